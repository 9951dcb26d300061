"""Read-only admin for portfolio runs (they are made by running them)."""

from __future__ import annotations

from django.contrib import admin

from backtester.portfolio.models import PortfolioRun
from backtester.runs.admin import ReadOnlyAdmin


@admin.register(PortfolioRun)
class PortfolioRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "strategy", "status", "source", "max_positions", "rank",
        "elapsed_s", "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "source", "strategy", "rank"]
    search_fields = ["strategy", "created_by__username"]
    exclude = ["curve"]
    list_select_related = ["created_by"]
