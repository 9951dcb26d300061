"""Read-only admin for portfolio runs and sweeps (made by running them)."""

from __future__ import annotations

from django.contrib import admin

from backtester.portfolio.models import PortfolioRun, PortfolioSweep
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


@admin.register(PortfolioSweep)
class PortfolioSweepAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "strategy", "status", "rank", "completed", "skipped", "elapsed_s",
        "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "strategy", "rank"]
    search_fields = ["strategy", "created_by__username"]
    exclude = ["combinations", "data_versions"]
    list_select_related = ["created_by"]
