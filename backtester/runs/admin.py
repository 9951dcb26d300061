"""Read-only admin for saved runs and their results (runs are made by running)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from backtester.runs.models import BacktestResult, BacktestRun

RESULT_COLUMNS = [
    "symbol", "strategy", "total_return_pct", "buy_hold_return_pct",
    "sharpe", "max_drawdown_pct", "num_trades", "win_rate_pct",
]  # fmt: skip


class ReadOnlyAdmin(admin.ModelAdmin):
    """View and delete only: rows are written by the runner, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class BacktestResultInline(admin.TabularInline):
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
    list_display = [
        "id", "created_at", "strategy_label", "status", "source", "coins",
        "completed", "total", "elapsed_s", "beat_buy_hold", "created_by",
    ]  # fmt: skip
    list_filter = ["status", "source", "interval"]
    date_hierarchy = "created_at"
    inlines = [BacktestResultInline]
    list_select_related = ["created_by"]

    @admin.display(description="coins")
    def coins(self, run: BacktestRun) -> int:
        return len(run.symbols or [])

    @admin.display(description="beat B&H")
    def beat_buy_hold(self, run: BacktestRun) -> str:
        summary = run.summary or {}
        if not summary.get("results"):
            return "-"
        scored = summary["results"] - summary.get("skipped", 0)
        return f"{summary.get('beat_buy_hold', 0)} / {scored}"


@admin.register(BacktestResult)
class BacktestResultAdmin(ReadOnlyAdmin):
    list_display = ["run", *RESULT_COLUMNS]
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
