"""Walk-forward records on workers: ended once, and shown only when complete."""

from __future__ import annotations

import pytest

from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.walk_forwards import (
    walk_forward_begin,
    walk_forward_end,
    walk_forward_status,
)

pytestmark = pytest.mark.django_db
RESULT = {"folds": [], "stitched": {}}


def make(status: str) -> WalkForwardRun:
    return WalkForwardRun.objects.create(
        strategy="sma_crossover",
        status=status,
        result=RESULT if status == "complete" else {},
    )


def test_the_first_end_wins():
    wf = make("queued")
    assert walk_forward_begin(wf.pk, "task-1")
    assert walk_forward_end(wf.pk, status="cancelled")
    # The worker's result arrives after the cancel: the record keeps its end.
    assert not walk_forward_end(wf.pk, status="complete", result=RESULT, elapsed_s=1.0)
    assert not walk_forward_begin(wf.pk, "task-2")  # a task delivered again
    wf.refresh_from_db()
    assert (wf.status, wf.result, wf.task_id) == ("cancelled", {}, "task-1")
    assert walk_forward_status(wf.pk) == "cancelled"


def test_pages_show_complete_walk_forwards_only(client):
    done = make("complete")
    hidden = [make(s) for s in ("queued", "running", "cancelled", "failed")]
    html = client.get("/sweeps/walk-forward/").content.decode()
    assert f"/sweeps/walk-forward/{done.pk}/" in html
    for wf in hidden:
        assert f"/sweeps/walk-forward/{wf.pk}/" not in html
        assert client.get(f"/sweeps/walk-forward/{wf.pk}/").status_code == 404
    assert client.get(f"/sweeps/walk-forward/{done.pk}/").status_code == 200
