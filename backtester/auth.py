"""The client's address behind trusted proxies: for the login throttle
(django-axes) and for the run limits of anonymous visitors."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def _behind_proxies(forwarded_for: str, peer: str | None) -> str | None:
    hops = settings.TRUSTED_PROXIES
    if hops > 0:
        forwarded = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return peer


def scope_client_ip(scope: dict) -> str | None:
    """Return the client address of an ASGI (websocket) scope, as client_ip."""
    headers = dict(scope.get("headers") or [])
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    peer = (scope.get("client") or [None])[0]
    return _behind_proxies(forwarded, peer)


def client_ip(request: HttpRequest) -> str | None:
    """Return the address of the client behind TRUSTED_PROXIES proxies.

    Each trusted proxy appends the address it was reached from to
    X-Forwarded-For, so the client is the TRUSTED_PROXIES-th entry from the
    end; anything before it was written by the client and cannot be trusted.
    With no trusted proxy (or too short a header) it is REMOTE_ADDR.
    """
    return _behind_proxies(
        request.META.get("HTTP_X_FORWARDED_FOR", ""), request.META.get("REMOTE_ADDR")
    )
