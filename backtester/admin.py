"""Read-only admin for saved runs and their results."""

from __future__ import annotations

from django.contrib import admin

from backtester.models import BacktestResult, BacktestRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BacktestResultInline(admin.TabularInline):
    model = BacktestResult
    fields = ["symbol", "strategy", "total_return_pct", "buy_hold_return_pct",
              "sharpe", "max_drawdown_pct", "num_trades", "win_rate_pct"]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("trades", "equity")


@admin.register(BacktestRun)
class BacktestRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "strategy_label", "status", "source", "total",
                    "completed", "elapsed_s", "created_by"]  # fmt: skip
    list_filter = ["status", "source", "interval"]
    date_hierarchy = "created_at"
    inlines = [BacktestResultInline]
    list_select_related = ["created_by"]


@admin.register(BacktestResult)
class BacktestResultAdmin(ReadOnlyAdmin):
    list_display = ["run", "symbol", "strategy", "total_return_pct", "sharpe",
                    "max_drawdown_pct", "num_trades"]  # fmt: skip
    list_filter = ["strategy"]
    search_fields = ["symbol"]
    raw_id_fields = ["run"]
