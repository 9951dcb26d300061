"""Why a job failed, as its client may read it."""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError, OperationalError

# psycopg's names (DB-API) for a server that cannot be reached or a connection
# that was lost; ``psycopg2.errors.AdminShutdown`` and the like derive from them.
DRIVER_UNAVAILABLE = {"OperationalError", "InterfaceError"}


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
        # The driver's own errors too: the price loader's COPY reads through
        # psycopg directly, outside Django's wrappers.
        driver = module.startswith("psycopg")
        if isinstance(exc, OperationalError | InterfaceError) or (
            driver and any(c.__name__ in DRIVER_UNAVAILABLE for c in type(exc).__mro__)
        ):
            return "the database is unavailable"
        if isinstance(exc, DatabaseError) or driver:
            return "the results could not be stored in the database"
        if module.startswith("redis") or module.startswith("channels_redis"):
            return "Redis is unavailable"
        exc = exc.__cause__ or exc.__context__
    return "an internal error stopped the run (see the server log)"
