"""The run consumer's answers from stored results: an identical run's copied
results (cache.py), and the results a client asks for again (``resend``)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from backtester.runs import events
from backtester.runs.cache import results_encoded
from backtester.runs.models import BacktestRun
from backtester.runs.selectors import results_by_seq, run_risk

# Seqs one resend may ask for.
MAX_RESEND = 10_000


class StoredResultsMixin:
    """Stream stored results to the client (needs ``send_json``, ``send_text``,
    ``runs`` and ``_fail_request`` of the consumer)."""

    async def _answer_cached(self, run: BacktestRun) -> None:
        """Stream a run answered from stored results as a computed one is: start,
        every result, complete; each says which run it was copied from."""
        self.runs.add(run.pk)
        await self.send_json(
            events.start(run.pk, run.total, cached_from=run.cached_from_id)
        )
        try:
            items = await database_sync_to_async(results_encoded)(
                run.pk, risk=run_risk(run).as_dict()
            )
        except Exception as exc:
            await self._fail_request(exc)
            return
        for count, (seq, data) in enumerate(items, 1):
            text = events.result_text(data, count, run.total, seq=seq, run_id=run.pk)
            if not await self.send_text(text):
                return
        await self.send_json(
            events.complete(run.summary, 0.0, run.pk, cached_from=run.cached_from_id)
        )

    async def _resend(self, content: dict) -> None:
        run_id, seqs = content.get("run_id"), content.get("seqs")
        if (
            not isinstance(run_id, int)
            or isinstance(run_id, bool)
            or (run_id not in self.runs)
        ):
            await self.send_json(
                events.error("resend: run_id names no run of this connection", "run_id")
            )
            return
        if (
            not isinstance(seqs, list)
            or len(seqs) > MAX_RESEND
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seqs)
        ):
            await self.send_json(
                events.error(
                    f"resend: seqs must be a list of at most {MAX_RESEND} integers",
                    "seqs",
                )
            )
            return
        wanted = set(seqs)
        try:
            items = await database_sync_to_async(results_by_seq)(run_id)
        except Exception as exc:
            await self._fail_request(exc)
            return
        for item in items:
            if item["seq"] in wanted:
                event = events.result(
                    item["data"], len(items), len(items), seq=item["seq"], run_id=run_id
                )
                if not await self.send_json(event):
                    return
