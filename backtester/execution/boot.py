"""What a starting server does about the jobs a dead predecessor left."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


def jobs_mark_stale_at_boot(
    markers: Mapping[str, Callable[[], int]], attempts: int = 30, pause: float = 2.0
) -> None:
    """Call each app's ``mark_stale`` (by what it marks) as a server starts.

    Run in a thread of a starting server (asgi.py), so that after a crash the
    records are right, and the dead server's pieces still queued for Celery
    workers are stopped, before anyone opens a page or starts a job. The
    database may still be starting too: a connection error is tried again a
    while.
    """
    from django.db import OperationalError, close_old_connections, connections

    left = dict(markers)
    for _ in range(attempts):
        close_old_connections()
        try:
            for what, mark in list(left.items()):
                count = mark()
                left.pop(what)
                if count:
                    logger.warning(
                        "marked %d %s left by stopped processes as failed",
                        count,
                        what,
                    )
        except OperationalError as exc:
            logger.info("start-up check of unfinished jobs waits: %r", exc)
            time.sleep(pause)
            continue
        except Exception as exc:  # never stop a server from starting
            logger.info("start-up check of unfinished jobs skipped: %r", exc)
            return
        finally:
            connections.close_all()
        return
