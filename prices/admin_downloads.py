"""Admin for downloads from the exchange's archive: the coin action and its jobs."""

from __future__ import annotations

from datetime import date

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html

from prices.download import download_job_start
from prices.models import ArchiveFile, DownloadJob

# What the admin action fetches: hourly bars from the first day the
# command fetches by default.
ACTION_INTERVAL = "1h"
ACTION_START = date(2020, 1, 1)


@admin.action(description="Download/update from the archive")
def download_from_archive(modeladmin, request, queryset: QuerySet) -> None:
    """Start a background download of the selected coins' hourly bars."""
    symbols = sorted(queryset.values_list("symbol", flat=True))
    job, _thread = download_job_start(
        symbols=symbols, interval=ACTION_INTERVAL, start=ACTION_START
    )
    link = reverse("admin:prices_downloadjob_change", args=[job.pk])
    modeladmin.message_user(
        request,
        format_html(
            'Downloading {} coin(s) in the background: <a href="{}">job {}</a>.',
            len(symbols),
            link,
            job.pk,
        ),
        messages.SUCCESS,
    )


@admin.register(DownloadJob)
class DownloadJobAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "status",
        "interval",
        "symbols",
        "progress",
        "rows",
        "failures",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "interval"]
    readonly_fields = [
        "status",
        "interval",
        "symbols",
        "progress",
        "rows",
        "failures",
        "message",
        "started_at",
        "finished_at",
    ]
    exclude = ["files_done", "files_total"]

    @admin.display(description="files")
    def progress(self, job: DownloadJob) -> str:
        if not job.files_total:
            return "\u2013"
        percent = 100 * job.files_done // job.files_total
        return f"{job.files_done:,} of {job.files_total:,} ({percent}%)"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ArchiveFile)
class ArchiveFileAdmin(admin.ModelAdmin):
    list_display = ["name", "crypto", "interval", "rows", "sha256", "imported_at"]
    list_filter = ["interval"]
    search_fields = ["name"]
    list_select_related = ["crypto"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
