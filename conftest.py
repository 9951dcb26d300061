"""Shared pytest set-up: server markers, cache isolation, real-data location."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REAL_DATA_DIR = (
    Path(
        os.environ.get(
            "BTLAB_REAL_DATA",
            Path(__file__).resolve().parent.parent / "shared" / "data",
        )
    )
    / "ohlcv-1h"
)

# Set by `make test` for the pass that runs against real servers: a test marked
# postgres or redis must then run, never be skipped.
REQUIRE_SERVICES = os.environ.get("BTLAB_REQUIRE_SERVICES") == "1"
# Set by CI (.ci/run), which installs Chromium, nginx and docker-compose: only
# there does a browser or program test that skips fail the pass. A newcomer with
# PostgreSQL and Redis but without those programs gets skips with a reason.
CI = os.environ.get("BTLAB_CI", "") not in ("", "0")

pytest_plugins = ["pytester"]  # for the tests of these hooks


def _database_is_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def _redis_configured() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "REDIS_URL", ""))


def pytest_collection_modifyitems(config, items):
    missing = {
        "postgres": None
        if _database_is_postgres()
        else "needs PostgreSQL: set DATABASE_URL (make test starts a server)",
        "redis": None
        if _redis_configured()
        else "needs Redis: set REDIS_URL (make test starts a server)",
    }
    for item in items:
        for mark, reason in missing.items():
            if reason and mark in item.keywords:
                if REQUIRE_SERVICES:
                    raise pytest.UsageError(
                        f"{item.nodeid}: {reason} but BTLAB_REQUIRE_SERVICES=1"
                    )
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, on the pass that requires every server, a test that needs an
    external program (Chromium, nginx, docker-compose) fails instead of skipping."""
    outcome = yield
    report = outcome.get_result()
    needs_program = item.get_closest_marker("program") or item.get_closest_marker(
        "browser"
    )
    if CI and REQUIRE_SERVICES and report.skipped and needs_program:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        report.outcome = "failed"
        report.longrepr = f"skipped but BTLAB_CI=1 on the real-server pass: {reason}"


@pytest.fixture(autouse=True)
def _no_cache_warming(settings):
    """Tests that count loads or hold them at a gate must not meet a background
    warm-up started by the socket opening; the warm-up tests turn it on."""
    settings.PRICE_CACHE_WARM = False


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start every test with an empty cache (local memory or a test Redis)."""
    from django.core.cache import cache

    from prices import cache as price_cache

    # A test may have stopped its own Redis server: then there is nothing to clear.
    with contextlib.suppress(Exception):
        cache.clear()
    # Importing the ASGI application (as the websocket tests do) keeps series
    # read from Redis in this process, as a server does; tests read Redis.
    price_cache.keep_local(0)
    yield


@pytest.fixture
def real_data_dir() -> Path:
    """Return the directory of real hourly candles, skipping if it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA_DIR}")
    return REAL_DATA_DIR


@pytest.fixture
def private_redis():
    """Start a Redis server of this test's own (it may stop it); yield it with
    cache settings pointing at it, as configured in production."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
    from services import RedisServer, redis_binary

    if redis_binary() is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {
                "SERIALIZER": "prices.cache.PassthroughSerializer",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    try:
        yield server, caches
    finally:
        server.close()
