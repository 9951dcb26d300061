"""Pages of saved strategies: the list, the editor, and its JSON endpoints."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from backtester.library.checking import SourceRefused, strategy_check
from backtester.library.preview import PREVIEW_KEY, preview_data
from backtester.library.selectors import (
    UnknownStrategy,
    strategies_visible,
    strategy_editable,
    strategy_get,
    version_get,
)
from backtester.library.services import StrategyError, strategy_delete, strategy_save
from backtester.runs.validation import RequestError
from prices.selectors import coins_with_range
from strategies.registry import STRATEGIES
from strategies.rules.errors import RuleError

# The JSON a request may send (the source is at most 8 KB; the rest is small).
MAX_BODY = 16 * 1024
STARTER = """\
# A new strategy. Comments start with #.
param fast: int = 20 in 2..200
param slow: int = 50 in 5..400

long entry: crosses_above(sma(close, fast), sma(close, slow))
long exit:  crosses_below(sma(close, fast), sma(close, slow))
"""


def _body(request: HttpRequest) -> dict:
    """Return the request's JSON object or raise RequestError saying why not."""
    if len(request.body) > MAX_BODY:
        raise RequestError(f"request larger than {MAX_BODY // 1024} KB", "source")
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("expected a JSON object") from None
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object")
    return data


def _strategy_or_404(request: HttpRequest, key: str):
    try:
        return strategy_get(key, user=request.user)
    except UnknownStrategy:
        raise Http404(f"unknown strategy {key[:40]!r}") from None


def strategy_list(request: HttpRequest) -> HttpResponse:
    """List the built-ins, the user's own strategies and the shared ones."""
    visible = strategies_visible(request.user).select_related("owner")
    user_id = request.user.pk if request.user.is_authenticated else None
    rows = [
        {
            "strategy": s,
            "version": s.versions.order_by("-number").first(),
            "editable": strategy_editable(s, user=request.user),
        }
        for s in visible
    ]
    return render(
        request,
        "library/strategy_list.html",
        {
            "builtins": list(STRATEGIES.values()),
            "own": [r for r in rows if r["strategy"].owner_id == user_id and user_id],
            "shared": [
                r for r in rows if not (r["strategy"].owner_id == user_id and user_id)
            ],
        },
    )


def _editor(request: HttpRequest, *, strategy=None) -> HttpResponse:
    version = version_get(strategy) if strategy is not None else None
    coins = [
        {"symbol": c.symbol, "first_bar": c.first_bar, "last_bar": c.last_bar}
        for c in coins_with_range()
        if c.first_bar is not None
    ]
    data = {
        "key": strategy.key if strategy else "",
        "name": strategy.name if strategy else "",
        "description": strategy.description if strategy else "",
        "shared": bool(strategy and strategy.shared),
        "version": version.number if version else None,
        "source": version.source if version else STARTER,
        "editable": strategy is None or strategy_editable(strategy, user=request.user),
        "can_save": request.user.is_authenticated,
        "coins": [
            {
                "symbol": c["symbol"],
                "first_bar": c["first_bar"].strftime("%Y-%m-%d"),
                "last_bar": c["last_bar"].strftime("%Y-%m-%d"),
            }
            for c in coins
        ],
        "urls": {
            "check": reverse("strategy_check"),
            "preview": reverse("strategy_preview"),
            "save": reverse("strategy_save"),
            "run": reverse("home"),
            "sweep": reverse("sweep_page"),
            "edit": reverse("strategy_edit", args=["KEY"]),
        },
    }
    return render(
        request, "library/strategy_edit.html", {"strategy": strategy, "data": data}
    )


def strategy_new(request: HttpRequest) -> HttpResponse:
    """Render the editor with a starter strategy."""
    return _editor(request)


def strategy_edit(request: HttpRequest, key: str) -> HttpResponse:
    """Render the editor on a visible strategy's latest version (404 otherwise)."""
    return _editor(request, strategy=_strategy_or_404(request, key))


@require_POST
def check_json(request: HttpRequest) -> JsonResponse:
    """Check a source: problems with line and column, or its parameters."""
    try:
        return JsonResponse(strategy_check(_body(request).get("source")))
    except (RequestError, SourceRefused) as exc:
        return JsonResponse({"error": str(exc), "field": "source"}, status=400)


@require_POST
def preview_json(request: HttpRequest) -> JsonResponse:
    """Run an unsaved source on one coin and range; return price and trades."""
    try:
        return JsonResponse(preview_data(_body(request)))
    except SourceRefused as exc:
        return JsonResponse({"error": str(exc), "field": "source"}, status=400)
    except RequestError as exc:
        field = (exc.field or "").replace("strategy", "source") or None
        message = exc.message.replace(f"{PREVIEW_KEY!r}", "the strategy")
        return JsonResponse({"error": message, "field": field}, status=400)


@require_POST
def save_json(request: HttpRequest) -> JsonResponse:
    """Save the source as a new version of the key; the compiler checks it first."""
    try:
        data = _body(request)
        version = strategy_save(
            key=data.get("key"),
            source=data.get("source"),
            user=request.user,
            name=data.get("name"),
            description=data.get("description"),
            shared=bool(data["shared"]) if "shared" in data else None,
        )
    except RuleError as exc:
        return JsonResponse(
            {"error": str(exc), "field": "source", "errors": exc.errors}, status=400
        )
    except (RequestError, StrategyError) as exc:
        status = 403 if not request.user.is_authenticated else 400
        return JsonResponse({"error": exc.message, "field": exc.field}, status=status)
    key = version.strategy.key
    return JsonResponse(
        {
            "ok": True,
            "key": key,
            "version": version.number,
            "sha256": version.sha256,
            "edit_url": reverse("strategy_edit", args=[key]),
        }
    )


@require_POST
def delete(request: HttpRequest, key: str) -> HttpResponse:
    """Delete a strategy of one's own (hidden instead when a run used it)."""
    strategy = _strategy_or_404(request, key)
    try:
        strategy_delete(strategy=strategy, user=request.user)
    except UnknownStrategy:
        raise Http404(f"unknown strategy {key[:40]!r}") from None
    return redirect("strategy_list")
