"""Admin for coins (with bar statistics) and read-only price bars."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from prices.admin_downloads import download_from_archive
from prices.importers import ImportFormatError
from prices.models import Cryptocurrency, Interval, PriceBar
from prices.provenance import ImportConflict
from prices.selectors import coin_gaps, coins_with_range, coins_with_stats
from prices.services import coin_cache_clear, upload_import

# Gaps listed on a coin's page, longest first.
GAPS_SHOWN = 20


class PriceImportForm(forms.Form):
    file = forms.FileField(
        help_text="timestamp,open,high,low,close,volume CSV or a Binance kline "
        "CSV, plain or gzip-compressed."
    )
    symbol = forms.CharField(
        required=False, help_text="Default: from the file name (BTCUSDT.csv -> BTC)."
    )
    interval = forms.ChoiceField(
        required=False,
        choices=[("", "from the file name, else 1h"), *Interval.choices],
    )
    replace = forms.BooleanField(
        required=False,
        help_text="Delete the coin's stored bars (every interval) first. Without "
        "it, a file that would change stored bars or mix them with bars from "
        "elsewhere (the synthetic demo) is refused.",
    )


@admin.register(Cryptocurrency)
class CryptocurrencyAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "name",
        "is_active",
        "hourly_bars",
        "minute_bars",
        "first_bar",
        "last_bar",
        "missing_bars",
        "source",
    ]
    list_filter = ["is_active", "source"]
    search_fields = ["symbol", "name"]
    readonly_fields = [
        "source",
        "source_detail",
        "data_version",
        "created_at",
        "updated_at",
        "gaps",
    ]
    change_list_template = "admin/prices/cryptocurrency/change_list.html"

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="prices_import")] + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Import an uploaded price file under the same rule as import_prices."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PriceImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = upload_import(
                    form.cleaned_data["file"],
                    symbol=form.cleaned_data["symbol"] or None,
                    interval=form.cleaned_data["interval"] or None,
                    replace=form.cleaned_data["replace"],
                )
            except (ImportFormatError, ImportConflict) as exc:
                form.add_error(None, str(exc))
            else:
                removed = (
                    f", replacing {result.removed_rows:,} stored bars"
                    if result.removed_rows
                    else ""
                )
                self.message_user(
                    request,
                    f"{result.symbol} {result.interval}: {result.rows:,} rows "
                    f"({result.new_rows:,} new, {result.unchanged_rows:,} unchanged, "
                    f"{result.changed_rows:,} changed{removed}).",
                    messages.SUCCESS,
                )
                return redirect("admin:prices_cryptocurrency_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Import prices",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/prices/cryptocurrency/import.html", context
        )

    actions = [
        "activate",
        "deactivate",
        "clear_cached_prices",
        download_from_archive,
    ]
    ordering = ["symbol"]

    def get_queryset(self, request) -> QuerySet:
        # Counts and bounds for every listed coin in the changelist's one query.
        return coins_with_stats()

    @admin.display(description="hourly bars", ordering="hourly_bars")
    def hourly_bars(self, obj: Cryptocurrency) -> int:
        return obj.hourly_bars

    @admin.display(description="1-minute bars", ordering="minute_bars")
    def minute_bars(self, obj: Cryptocurrency) -> int:
        return obj.minute_bars

    @admin.display(description="first bar", ordering="first_bar")
    def first_bar(self, obj: Cryptocurrency):
        return obj.first_bar

    @admin.display(description="last bar", ordering="last_bar")
    def last_bar(self, obj: Cryptocurrency):
        return obj.last_bar

    @admin.display(description="missing hourly bars")
    def missing_bars(self, obj: Cryptocurrency) -> int | str:
        # From the counts and bounds the changelist query already has: the
        # hours the range spans less the bars present. No bar is read.
        if not obj.hourly_bars:
            return "\u2013"
        span = (obj.last_bar - obj.first_bar).total_seconds() // 3600 + 1
        return int(span) - obj.hourly_bars

    @admin.display(description="gaps in the hourly bars")
    def gaps(self, obj: Cryptocurrency) -> str:
        if obj.pk is None:
            return "\u2013"
        count, longest = coin_gaps(obj.pk, limit=GAPS_SHOWN)
        if not count:
            return "none: every hour from the first bar to the last is present"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{gap.after:%Y-%m-%d %H:%M}",
                    f"{gap.before:%Y-%m-%d %H:%M}",
                    f"{gap.missing_bars:,}",
                    f"{gap.hours:,.0f}",
                )
                for gap in longest
            ),
        )
        shown = f", the {len(longest)} longest shown" if count > len(longest) else ""
        return format_html(
            "<p>{} gap{}{} (UTC):</p><table><thead><tr><th>last bar before</th>"
            "<th>first bar after</th><th>missing bars</th><th>hours</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            f"{count:,}",
            "" if count == 1 else "s",
            shown,
            rows,
        )

    @admin.action(description="Activate selected coins")
    def activate(self, request, queryset: QuerySet) -> None:
        count = Cryptocurrency.objects.filter(pk__in=queryset.values("pk")).update(
            is_active=True
        )
        self.message_user(request, f"{count} coin(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected coins")
    def deactivate(self, request, queryset: QuerySet) -> None:
        count = Cryptocurrency.objects.filter(pk__in=queryset.values("pk")).update(
            is_active=False
        )
        self.message_user(request, f"{count} coin(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Clear cached prices of selected coins")
    def clear_cached_prices(self, request, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        coin_cache_clear(ids)
        self.message_user(
            request, f"Cached prices of {len(ids)} coin(s) cleared.", messages.SUCCESS
        )


class EstimatedCountPaginator(Paginator):
    """A paginator whose count stays fast on a table of millions of bars.

    On PostgreSQL the count is the planner's estimate: the table's
    ``pg_class.reltuples`` when unfiltered, the plan's row estimate otherwise;
    an exact COUNT only when the estimate is small (a coin, a month). Elsewhere
    (SQLite, the demo) an exact COUNT, which its index answers in well under a
    second for a few million bars. Every page stays reachable either way.
    """

    EXACT_BELOW = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor != "postgresql":
            return queryset.count()
        estimate = _estimated_rows(queryset)
        if estimate < self.EXACT_BELOW:
            return queryset.count()
        return estimate


def _estimated_rows(queryset: QuerySet) -> int:
    """Return PostgreSQL's estimate of the rows a queryset returns."""
    with connection.cursor() as cursor:
        if not queryset.query.where:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            rows = cursor.fetchone()[0]
            if rows >= 0:  # -1: never analysed; ask the planner instead
                return int(rows)
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class YearFilter(admin.SimpleListFilter):
    """Bars of one year, from the years the coins' bars span (no scan of bars)."""

    title = "year"
    parameter_name = "year"

    def lookups(self, request, model_admin):
        bounds = coins_with_range(active_only=False).aggregate(
            first=Min("first_bar"), last=Max("last_bar")
        )
        if not bounds["first"]:
            return []
        years = range(bounds["last"].year, bounds["first"].year - 1, -1)
        return [(str(y), str(y)) for y in years]

    def queryset(self, request, queryset):
        if not (self.value() or "").isdigit():
            return queryset
        year = int(self.value())
        return queryset.filter(
            time__gte=datetime(year, 1, 1, tzinfo=UTC),
            time__lt=datetime(year + 1, 1, 1, tzinfo=UTC),
        )


class MonthFilter(admin.SimpleListFilter):
    """Bars of one calendar month (of the chosen year, or of every year)."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        return [(str(m), f"{m:02d} {calendar.month_abbr[m]}") for m in range(1, 13)]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if not value.isdigit() or not 1 <= int(value) <= 12:
            return queryset
        month = int(value)
        year = request.GET.get(YearFilter.parameter_name, "")
        if year.isdigit():
            # A time range the (crypto, interval, time) index can read.
            first = datetime(int(year), month, 1, tzinfo=UTC)
            after = datetime(int(year) + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            return queryset.filter(time__gte=first, time__lt=after)
        return queryset.filter(time__month=month)


def price_text(value: float) -> str:
    """Return a price to about six significant digits: coins span 1e-6 to 1e5,
    and a float's seventeen digits overflow the columns."""
    if value >= 1000:
        return f"{value:,.2f}"
    return f"{value:.6g}"


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    list_display = [
        "crypto",
        "interval",
        "time",
        "open_price",
        "high_price",
        "low_price",
        "close_price",
        "volume_amount",
    ]
    # The coin filter lists coins from their own small table; "related only"
    # would run SELECT DISTINCT over every bar. Year and month reach old bars
    # in a click without the date hierarchy's DISTINCT over every bar.
    list_filter = ["interval", "crypto", YearFilter, MonthFilter]
    list_select_related = ["crypto"]
    raw_id_fields = ["crypto"]
    # The order of the unique (crypto, interval, time) index read backwards:
    # newest bars first within a coin, and a page is an index range scan. A
    # plain "-time" sorts every bar (about a second for 2.1M on PostgreSQL).
    ordering = ["-crypto_id", "-interval", "-time"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    # No date_hierarchy: its year/month drill-down runs DISTINCT date queries
    # over every bar, which costs seconds on millions of rows.

    @admin.display(description="open", ordering="open")
    def open_price(self, bar: PriceBar) -> str:
        return price_text(bar.open)

    @admin.display(description="high", ordering="high")
    def high_price(self, bar: PriceBar) -> str:
        return price_text(bar.high)

    @admin.display(description="low", ordering="low")
    def low_price(self, bar: PriceBar) -> str:
        return price_text(bar.low)

    @admin.display(description="close", ordering="close")
    def close_price(self, bar: PriceBar) -> str:
        return price_text(bar.close)

    @admin.display(description="volume", ordering="volume")
    def volume_amount(self, bar: PriceBar) -> str:
        return f"{bar.volume:,.0f}" if bar.volume >= 100 else f"{bar.volume:.4g}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
