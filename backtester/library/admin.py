"""Admin for saved strategies: metadata editable, every version's source read-only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from backtester.library.models import Strategy, StrategyVersion

VERSION_FIELDS = ["number", "sha256", "created_at", "source"]


class StrategyVersionInline(admin.TabularInline):
    model = StrategyVersion
    fields = VERSION_FIELDS
    readonly_fields = VERSION_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "owner", "shared", "hidden", "updated_at"]
    list_filter = ["shared", "hidden"]
    search_fields = ["key", "name", "owner__username"]
    readonly_fields = ["key", "created_at", "updated_at"]
    list_select_related = ["owner"]
    inlines = [StrategyVersionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Sources are compiled before they are saved: the editor and the
        # ``strategy save`` command do that, a bare admin form would not.
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A run may have used it; tick "hidden" instead (or delete in the app,
        # which deletes only what no run or sweep used).
        return False


@admin.register(StrategyVersion)
class StrategyVersionAdmin(admin.ModelAdmin):
    list_display = ["strategy", "number", "sha256", "created_at"]
    search_fields = ["strategy__key", "sha256"]
    readonly_fields = ["strategy", *VERSION_FIELDS]
    list_select_related = ["strategy"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
