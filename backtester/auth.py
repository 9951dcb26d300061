"""The client address used to throttle failed logins (django-axes)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Return the address of the client behind TRUSTED_PROXIES proxies.

    Each trusted proxy appends the address it was reached from to
    X-Forwarded-For, so the client is the TRUSTED_PROXIES-th entry from the
    end; anything before it was written by the client and cannot be trusted.
    With no trusted proxy (or too short a header) it is REMOTE_ADDR.
    """
    hops = settings.TRUSTED_PROXIES
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR")
