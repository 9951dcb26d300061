"""Stored walk-forward pages: the list, one walk-forward, its JSON export."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.walk_forwards import walk_forward_get, walk_forwards_list
from strategies.registry import STRATEGIES

WALK_FORWARDS_PER_PAGE = 25


def _get_or_404(request: HttpRequest, walk_forward_id: int) -> WalkForwardRun:
    try:
        return walk_forward_get(walk_forward_id, user=request.user)
    except WalkForwardRun.DoesNotExist:
        raise Http404(f"no walk-forward {walk_forward_id}") from None


def _name(key: str) -> str:
    return STRATEGIES[key].name if key in STRATEGIES else key


def _settings_text(wf: WalkForwardRun) -> dict:
    s = wf.settings
    symbols = s.get("symbols") or []
    return {
        "strategy": _name(wf.strategy),
        "axes": " × ".join(s.get("grid", {})),
        "coins": ", ".join(symbols) if symbols else "every active coin",
        "range": f"{(s.get('start') or 'first bar')[:10]} → "
        f"{(s.get('end') or 'last bar')[:10]} · {s.get('interval', '1h')}",
        "costs": f"fee {s.get('fee', 0) * 100:g}% · slippage "
        f"{s.get('slippage_bps', 0):g} bps",
        "folds": f"{s.get('train_bars')} train + {s.get('test_bars')} test bars"
        + (f", at most {s['folds']} folds" if s.get("folds") else ""),
    }


def walk_forward_list(request: HttpRequest) -> HttpResponse:
    """Render the stored walk-forwards, newest first."""
    page = Paginator(
        walk_forwards_list(user=request.user), WALK_FORWARDS_PER_PAGE
    ).get_page(request.GET.get("page"))
    rows = [{"wf": wf, **_settings_text(wf)} for wf in page.object_list]
    context = {"page": page, "rows": rows}
    return render(request, "sweeps/walk_forward_list.html", context)


def walk_forward_detail(request: HttpRequest, walk_forward_id: int) -> HttpResponse:
    """Render a stored walk-forward as the sweep page showed it."""
    wf = _get_or_404(request, walk_forward_id)
    return render(
        request,
        "sweeps/walk_forward_detail.html",
        {
            "walk_forward": wf,
            "text": _settings_text(wf),
            "page_data": {"result": wf.result, "elapsed_s": wf.elapsed_s or 0},
        },
    )


def walk_forward_export(request: HttpRequest, walk_forward_id: int) -> JsonResponse:
    """Return a stored walk-forward: its settings and its result."""
    wf = _get_or_404(request, walk_forward_id)
    return JsonResponse(
        {
            "walk_forward": {
                "id": wf.pk,
                "strategy": wf.strategy,
                "created_at": wf.created_at.isoformat(),
                "elapsed_s": wf.elapsed_s,
                **wf.settings,
            },
            "result": wf.result,
        }
    )
