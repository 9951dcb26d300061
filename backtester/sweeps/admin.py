"""Read-only admin for stored sweeps (sweeps are made by sweeping)."""

from __future__ import annotations

from django.contrib import admin

from backtester.runs.admin import ReadOnlyAdmin
from backtester.sweeps.models import Sweep


@admin.register(Sweep)
class SweepAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "strategy", "status", "source", "completed", "skipped", "total",
        "elapsed_s", "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "source", "strategy"]
    search_fields = ["strategy", "created_by__username"]
    exclude = ["combinations"]
    list_select_related = ["created_by"]
