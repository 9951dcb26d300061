"""Admin for coins (with bar statistics) and read-only price bars."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from prices.models import Cryptocurrency, PriceBar
from prices.selectors import coin_gaps, coins_with_stats
from prices.services import coin_cache_clear

# Gaps listed on a coin's page, longest first.
GAPS_SHOWN = 20


@admin.register(Cryptocurrency)
class CryptocurrencyAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "name",
        "is_active",
        "hourly_bars",
        "first_bar",
        "last_bar",
        "missing_bars",
    ]
    list_filter = ["is_active"]
    search_fields = ["symbol", "name"]
    readonly_fields = ["data_version", "created_at", "updated_at", "gaps"]
    actions = ["activate", "deactivate", "clear_cached_prices"]
    ordering = ["symbol"]

    def get_queryset(self, request) -> QuerySet:
        # Counts and bounds for every listed coin in the changelist's one query.
        return coins_with_stats()

    @admin.display(description="hourly bars", ordering="hourly_bars")
    def hourly_bars(self, obj: Cryptocurrency) -> int:
        return obj.hourly_bars

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
    """A paginator that never COUNTs a table of millions of bars.

    Pages are read with LIMIT/OFFSET as usual; the total is capped, so the last
    page links stop at the cap instead of costing a full scan.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return len(self.object_list[: self.CAP + 1].values_list("pk", flat=True))


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    list_display = [
        "crypto",
        "interval",
        "time",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    # The coin filter lists coins from their own small table; "related only"
    # would run SELECT DISTINCT over every bar.
    list_filter = ["interval", "crypto"]
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
