"""Coins and their OHLCV bars."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from prices.symbols import SYMBOL_MAX_LENGTH, symbol_problem


class Interval(models.TextChoices):
    MINUTE = "1m", "1 minute"
    MINUTES_5 = "5m", "5 minutes"
    MINUTES_15 = "15m", "15 minutes"
    MINUTES_30 = "30m", "30 minutes"
    HOUR = "1h", "1 hour"
    HOURS_4 = "4h", "4 hours"
    DAY = "1d", "1 day"


class Source(models.TextChoices):
    """Where a coin's bars came from; one coin never mixes two."""

    NONE = "", "no bars yet"
    DEMO = "demo", "synthetic demo"
    FILE = "file", "imported file"
    ARCHIVE = "archive", "exchange archive"


SOURCE_DETAIL_MAX_LENGTH = 200


def validate_symbol(value: str) -> None:
    """Raise ValidationError unless ``value`` is a valid coin symbol."""
    problem = symbol_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_symbol")


class Cryptocurrency(models.Model):
    symbol = models.CharField(
        max_length=SYMBOL_MAX_LENGTH,
        unique=True,
        validators=[validate_symbol],
        help_text="Ticker, e.g. BTC (quoted in USDT): upper-case letters and "
        "digits, 1 to 20 characters.",
    )
    name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive coins are left out of default runs."
    )
    source = models.CharField(
        max_length=10,
        choices=Source.choices,
        blank=True,
        default=Source.NONE,
        editable=False,
        help_text="Where the coin's bars came from.",
    )
    source_detail = models.CharField(
        max_length=SOURCE_DETAIL_MAX_LENGTH,
        blank=True,
        editable=False,
        help_text="The files or archive the bars were read from.",
    )
    # Bumped whenever bars of this coin change: cache keys carry it, so stale cache
    # entries become unreachable at once without scanning keys.
    data_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        verbose_name = "cryptocurrency"
        verbose_name_plural = "cryptocurrencies"
        indexes = [
            # Partial: the default run asks for active coins only.
            models.Index(
                fields=["symbol"],
                condition=Q(is_active=True),
                name="crypto_active_symbol_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})" if self.name else self.symbol

    @property
    def is_synthetic(self) -> bool:
        """Return whether the coin's bars are the synthetic demo data."""
        return self.source == Source.DEMO


class PriceBar(models.Model):
    # No separate index on crypto: the unique (crypto, interval, time) index
    # leads with it, and a second one only slows imports and tempts the planner
    # away from the covering index.
    crypto = models.ForeignKey(
        Cryptocurrency, on_delete=models.CASCADE, related_name="bars", db_index=False
    )
    interval = models.CharField(
        max_length=3, choices=Interval.choices, default=Interval.HOUR
    )
    time = models.DateTimeField(help_text="Bar open time (UTC).")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        ordering = ["crypto", "interval", "time"]
        constraints = [
            # The composite key: one bar per coin, interval and open time.
            models.UniqueConstraint(
                fields=["crypto", "interval", "time"],
                name="pricebar_crypto_interval_time_uniq",
            ),
            models.CheckConstraint(
                condition=Q(high__gte=F("low")), name="pricebar_high_gte_low"
            ),
            models.CheckConstraint(
                condition=Q(open__gt=0, high__gt=0, low__gt=0, close__gt=0),
                name="pricebar_prices_positive",
            ),
            models.CheckConstraint(
                condition=Q(volume__gte=0), name="pricebar_volume_non_negative"
            ),
        ]
        indexes = [
            # Covering and partial: the hourly loading query
            # (crypto = ANY(...) AND time in range) is answered by an Index Only
            # Scan on PostgreSQL. SQLite builds it without the INCLUDE columns.
            models.Index(
                fields=["crypto", "time"],
                include=["open", "high", "low", "close", "volume"],
                condition=Q(interval="1h"),
                name="pricebar_1h_covering_idx",
            ),
            # Partial: daily bars are few and read by time range for all coins.
            models.Index(
                fields=["time"],
                condition=Q(interval="1d"),
                name="pricebar_1d_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.crypto_id} {self.interval} {self.time:%Y-%m-%d %H:%M}"


# Intervals stored as packed day blocks (PriceBlock) rather than bar rows.
BLOCK_INTERVALS = (
    Interval.MINUTE,
    Interval.MINUTES_5,
    Interval.MINUTES_15,
    Interval.MINUTES_30,
)


class PriceBlock(models.Model):
    """One coin's sub-hour bars of one UTC day, packed (see ``prices.packing``).

    A row per bar would cost ~100 bytes a bar on PostgreSQL (tuple header, six
    columns, two index entries); a day of 1-minute bars packed into one value
    costs about a tenth of that, and a year loads as 365 rows.
    """

    crypto = models.ForeignKey(
        Cryptocurrency, on_delete=models.CASCADE, related_name="blocks", db_index=False
    )
    interval = models.CharField(max_length=3, choices=Interval.choices)
    day = models.DateField(help_text="UTC day the bars open on.")
    bars = models.PositiveSmallIntegerField(help_text="Bars in the block.")
    data = models.BinaryField()

    class Meta:
        ordering = ["crypto", "interval", "day"]
        constraints = [
            # Also the loading query's index: (coin, interval, day range).
            models.UniqueConstraint(
                fields=["crypto", "interval", "day"],
                name="priceblock_crypto_interval_day_uniq",
            ),
            models.CheckConstraint(
                condition=Q(interval__in=BLOCK_INTERVALS),
                name="priceblock_sub_hour_interval",
            ),
            models.CheckConstraint(
                condition=Q(bars__gt=0), name="priceblock_bars_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.crypto_id} {self.interval} {self.day:%Y-%m-%d}"


class ArchiveFile(models.Model):
    """A file of the exchange's archive that is imported (or known to be absent).

    A rerun skips every file recorded here; ``sha256`` is the checksum the
    file was imported with, so a file replaced upstream is noticed on a
    recheck. An empty ``sha256`` records a file the archive does not have.
    """

    crypto = models.ForeignKey(
        Cryptocurrency, on_delete=models.CASCADE, related_name="archive_files"
    )
    interval = models.CharField(max_length=3, choices=Interval.choices)
    name = models.CharField(max_length=100, help_text="e.g. BTCUSDT-1h-2024-01.zip")
    sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["crypto", "interval", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["crypto", "name"], name="archivefile_crypto_name_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DownloadJob(models.Model):
    """One download from the archive started in the admin, with its outcome."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    symbols = models.TextField(help_text="Comma-separated coin symbols.")
    interval = models.CharField(max_length=3, choices=Interval.choices)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.interval} {self.symbols} ({self.status})"
