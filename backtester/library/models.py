"""Saved strategies and their immutable, numbered versions."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.db import models

# A strategy's key: a slug that never collides with a file name or a URL part.
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}", re.ASCII)


def source_sha256(source: str) -> str:
    """Return the hex SHA-256 of a source's UTF-8 bytes."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


class Strategy(models.Model):
    """A strategy written in the rule language; its text lives in versions."""

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    # None: saved from the command line (visible to staff, or to all if shared).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="saved_strategies",
    )
    shared = models.BooleanField(default=False)
    # Deleted by its owner but used by a run or sweep: kept so those replay,
    # listed nowhere and runnable by no one.
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return self.key

    @property
    def label(self) -> str:
        return self.name or self.key


class StrategyVersion(models.Model):
    """One saved text of a strategy: never changed once written."""

    strategy = models.ForeignKey(
        Strategy, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    source = models.TextField()
    sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["strategy", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "number"], name="strategy_version_number_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id and self.strategy.key} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        # A run records the version it used; changing the text afterwards
        # would make its replay compute something else.
        if self.pk is not None:
            raise ValueError("a strategy version is immutable; save a new version")
        self.sha256 = source_sha256(self.source)
        super().save(*args, **kwargs)
