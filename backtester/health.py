"""``/healthz``: is the database reachable, and Redis when it is configured.

Answered by a middleware placed before host validation and the HTTPS redirect:
a container health check calls ``http://127.0.0.1:8000/healthz`` from inside,
whatever ``ALLOWED_HOSTS`` and ``SECURE_SSL`` say about public requests.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def _check(service: str, probe) -> dict:
    began = time.perf_counter()
    try:
        probe()
    except Exception:
        # The reason (with host names, ports, user names) goes to the log only;
        # an unauthenticated caller learns which service is down, nothing more.
        logger.exception("health check: %s unavailable", service)
        return {"ok": False, "error": f"{service} unavailable"}
    return {"ok": True, "ms": round((time.perf_counter() - began) * 1000, 1)}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Return 200 when every backing service answers, else 503, with details."""
    checks = {"database": _check("database", _database)}
    if settings.REDIS_URL:
        checks["redis"] = _check("redis", _redis)
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


class HealthCheckMiddleware:
    """Answer ``/healthz`` before anything that looks at the Host header."""

    path = "/healthz"

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == self.path and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
