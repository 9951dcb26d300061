"""Read-only admin for saved runs and their results (runs are made by running)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.presenters import params_text, plain, run_settings, signed

# The headline figures, rounded as the pages show them (drawdown negative).
RESULT_COLUMNS = [
    "symbol", "strategy", "parameters", "return_pct", "buy_hold_pct", "sharpe_ratio",
    "max_drawdown", "num_trades", "win_rate",
]  # fmt: skip
# The run page in the admin: settings in words, not the JSON they are stored as.
RUN_FIELDS = [
    "id", "status", "source", "created_by", "strategy_text", "coins_text",
    "range_text", "fee_text", "risk_text", "summary_text", "error",
    "total", "completed", "elapsed", "created_at", "started_at", "finished_at",
]  # fmt: skip


class HeadlineColumns:
    """The rounded headline figures of a result, shared by the inline and the list."""

    @admin.display(description="params")
    def parameters(self, result: BacktestResult) -> str:
        return params_text(result.params or {}) or "-"

    @admin.display(description="return %", ordering="total_return_pct")
    def return_pct(self, result: BacktestResult) -> str:
        return signed(result.total_return_pct)

    @admin.display(description="B&H %", ordering="buy_hold_return_pct")
    def buy_hold_pct(self, result: BacktestResult) -> str:
        return signed(result.buy_hold_return_pct)

    @admin.display(description="Sharpe", ordering="sharpe")
    def sharpe_ratio(self, result: BacktestResult) -> str:
        return plain(result.sharpe)

    @admin.display(description="max DD %", ordering="max_drawdown_pct")
    def max_drawdown(self, result: BacktestResult) -> str:
        dd = result.max_drawdown_pct
        return plain(None if dd is None else -dd)

    @admin.display(description="win %", ordering="win_rate_pct")
    def win_rate(self, result: BacktestResult) -> str:
        return plain(result.win_rate_pct, 1)


class ReadOnlyAdmin(admin.ModelAdmin):
    """View and delete only: rows are written by the runner, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class BacktestResultInline(HeadlineColumns, admin.TabularInline):
    model = BacktestResult
    fields = RESULT_COLUMNS
    readonly_fields = RESULT_COLUMNS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[BacktestResult]:
        return super().get_queryset(request).defer("trades", "equity")


@admin.register(BacktestRun)
class BacktestRunAdmin(ReadOnlyAdmin):
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS
    list_display = [
        "id", "created_at", "strategy_label", "status", "source", "coins",
        "completed", "total", "elapsed_s", "beat_buy_hold", "created_by",
    ]  # fmt: skip
    list_filter = ["status", "source", "interval"]
    date_hierarchy = "created_at"
    inlines = [BacktestResultInline]
    list_select_related = ["created_by"]

    class Media:
        # The results table scrolls in its box rather than widening the page.
        css = {"all": ["backtester/css/admin.css"]}

    @admin.display(description="coins")
    def coins(self, run: BacktestRun) -> int:
        return len(run.symbols or [])

    @admin.display(description="strategy")
    def strategy_text(self, run: BacktestRun) -> str:
        settings = run_settings(run)
        params = settings["params"]
        return f"{settings['strategy']} ({params})" if params else settings["strategy"]

    @admin.display(description="coins")
    def coins_text(self, run: BacktestRun) -> str:
        return ", ".join(run.symbols or []) or "-"

    @admin.display(description="range")
    def range_text(self, run: BacktestRun) -> str:
        return run_settings(run)["range"]

    @admin.display(description="fee · slippage")
    def fee_text(self, run: BacktestRun) -> str:
        return run_settings(run)["fee"]

    @admin.display(description="risk")
    def risk_text(self, run: BacktestRun) -> str:
        return run_settings(run)["risk"]

    @admin.display(description="elapsed")
    def elapsed(self, run: BacktestRun) -> str:
        return "-" if run.elapsed_s is None else f"{run.elapsed_s:.2f} s"

    @admin.display(description="summary")
    def summary_text(self, run: BacktestRun) -> str:
        s = run.summary or {}
        if not s.get("results"):
            return "-"
        rows = [
            ("backtests", str(s["results"])),
            ("beat buy & hold", self.beat_buy_hold(run)),
            ("median return %", signed(s.get("median_return_pct"))),
            ("mean return %", signed(s.get("mean_return_pct"))),
            ("mean Sharpe", plain(s.get("mean_sharpe"))),
        ]
        for key in ("best", "worst"):
            if s.get(key):
                pick = s[key]
                rows.append(
                    (key, f"{pick['symbol']} {pick['strategy']} "
                          f"{signed(pick['total_return_pct'])}%")
                )  # fmt: skip
        return format_html_join(", ", "{}: {}", rows)

    @admin.display(description="beat B&H")
    def beat_buy_hold(self, run: BacktestRun) -> str:
        summary = run.summary or {}
        if not summary.get("results"):
            return "-"
        scored = summary["results"] - summary.get("skipped", 0)
        return f"{summary.get('beat_buy_hold', 0)} / {scored}"


@admin.register(BacktestResult)
class BacktestResultAdmin(HeadlineColumns, ReadOnlyAdmin):
    list_display = ["run", *RESULT_COLUMNS]
    # Thousands of numbers each: the run detail page shows them.
    exclude = ["trades", "equity"]
    list_filter = ["strategy"]
    search_fields = ["symbol"]
    list_select_related = ["run"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BacktestResult]:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith(
            "_changelist"
        ):
            # The list shows headline columns; trades and equity stay in the DB.
            queryset = queryset.defer("trades", "equity", "metrics")
        return queryset
