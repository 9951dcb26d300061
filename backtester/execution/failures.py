"""Why a job failed, as its client may read it."""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError, OperationalError


def failure_reason(exc: BaseException) -> str:
    """Return why a run failed as the client may read it: the service at fault.

    A database or Redis (cache or channel layer) that cannot be reached is
    named; anything else is an internal error. Never the exception's text,
    which can hold host names, ports and queries.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        module = type(exc).__module__
        if isinstance(exc, OperationalError | InterfaceError):
            return "the database is unavailable"
        if isinstance(exc, DatabaseError):
            return "the results could not be stored in the database"
        if module.startswith("redis") or module.startswith("channels_redis"):
            return "Redis is unavailable"
        exc = exc.__cause__ or exc.__context__
    return "an internal error stopped the run (see the server log)"
