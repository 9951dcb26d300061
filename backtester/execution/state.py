"""A run's coordination state in Redis, shared by the web process and workers.

Per run: a stop flag (set on cancel or at the end: tasks that have not started
skip their work, running ones stop before storing), the sets of pieces started
(has any worker picked the run up?), ended (whatever the outcome) and published
(their results sent to the run's group), which worker process took each piece,
why a piece failed, and a list the monitor blocks on to wake when a piece starts
or ends. Per worker process: a heartbeat key that expires WORKER_TTL_S seconds
after its last beat, so a monitor tells a killed worker's pieces from slow ones.
Only flags and counters live here; results live in the database, and what counts
towards completion is the rows stored there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

KEY_PREFIX = "exec"
# Every key expires: a monitor or worker that dies leaves nothing for good. Long
# enough for a task redelivered after the visibility timeout to find the flag.
TTL_S = 24 * 3600
# Seconds a worker process's heartbeat key outlives its last beat (it beats
# every WORKER_BEAT_S): a worker silent this long is taken for dead.
WORKER_BEAT_S = 1.0
WORKER_TTL_S = 5


def _redis():
    return get_redis_connection("default")


def run_job(run_id: int) -> str:
    """Return the state name of a run."""
    return f"run:{run_id}"


def sweep_job(sweep_id: int) -> str:
    """Return the state name of a sweep."""
    return f"sweep:{sweep_id}"


def _key(job: str, name: str) -> str:
    # Under the cache's prefix: apart from other apps on a shared Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "btlab"
    return f"{prefix}:{KEY_PREFIX}:{job}:{name}"


def reset(job: str) -> None:
    """Forget any state of a previous job with this name (a reused test database)."""
    names = ("stop", "started", "ended", "published", "failed", "wake", "owners")
    _redis().delete(*(_key(job, n) for n in names))


def stop(job: str) -> None:
    """Tell the job's tasks to do no more work."""
    _redis().set(_key(job, "stop"), 1, ex=TTL_S)


def stop_all(jobs: Iterable[str]) -> None:
    """Tell the tasks of these jobs (failed while their monitor was gone) to do
    no more work; nothing happens without a Redis cache (no workers then)."""
    jobs = list(jobs)
    if not jobs or "django_redis" not in settings.CACHES["default"]["BACKEND"]:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for job in jobs:
            pipe.set(_key(job, "stop"), 1, ex=TTL_S)
        pipe.execute()
    except Exception as exc:  # the records are right; the tasks may run on
        logger.warning("could not stop the tasks of %d jobs: %r", len(jobs), exc)


def stopped(job: str) -> bool:
    return bool(_redis().exists(_key(job, "stop")))


def piece_started(job: str, piece: str, worker: str = "") -> None:
    """Record that ``worker`` (a worker process's name) has started the piece."""
    if worker:
        key = _key(job, "owners")
        _redis().pipeline(transaction=False).hset(key, piece, worker).expire(
            key, TTL_S
        ).execute()
    _mark(job, "started", piece)


def owners(job: str) -> dict[str, str]:
    """Return the worker process that last started each piece."""
    raw = _redis().hgetall(_key(job, "owners"))
    return {k.decode(): v.decode() for k, v in raw.items()}


def _worker_key(worker: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "btlab"
    return f"{prefix}:{KEY_PREFIX}:worker:{worker}"


def worker_beat(worker: str) -> None:
    """Record that the worker process ``worker`` is alive."""
    _redis().set(_worker_key(worker), 1, ex=WORKER_TTL_S)


def workers_alive(workers: Iterable[str]) -> set[str]:
    """Return those of ``workers`` whose heartbeat has not expired."""
    names = sorted(set(workers))
    if not names:
        return set()
    found = _redis().mget([_worker_key(w) for w in names])
    return {w for w, value in zip(names, found, strict=True) if value is not None}


def piece_ended(job: str, piece: str) -> None:
    _mark(job, "ended", piece)


def pieces_published(job: str, pieces: Iterable[str]) -> None:
    """Record that these pieces' results went out to the run's group."""
    _mark(job, "published", *pieces)


def _mark(job: str, name: str, *pieces: str) -> None:
    if not pieces:
        return
    key, wake = _key(job, name), _key(job, "wake")
    pipe = _redis().pipeline(transaction=False)
    pipe.sadd(key, *pieces).expire(key, TTL_S)
    pipe.rpush(wake, name).expire(wake, TTL_S)
    pipe.execute()


def ended(job: str) -> set[str]:
    """Return the pieces that have ended (whatever the outcome)."""
    return {p.decode() for p in _redis().smembers(_key(job, "ended"))}


def published(job: str) -> set[str]:
    """Return the pieces whose results were published."""
    return {p.decode() for p in _redis().smembers(_key(job, "published"))}


def piece_failed(job: str, piece: str, reason: str) -> None:
    """Record why a piece could not be computed (the run then fails)."""
    key = _key(job, "failed")
    pipe = _redis().pipeline(transaction=False)
    pipe.hset(key, piece, reason).expire(key, TTL_S)
    pipe.execute()


def progress(job: str) -> tuple[int, int, str | None]:
    """Return how many pieces have started, how many have ended, and the reason
    one of them failed (None while none has)."""
    pipe = _redis().pipeline(transaction=False)
    pipe.scard(_key(job, "started")).scard(_key(job, "ended"))
    pipe.hvals(_key(job, "failed"))
    started, ended, failures = pipe.execute()
    reason = failures[0].decode() if failures else None
    return int(started), int(ended), reason


def wait(job: str, timeout: float) -> bool:
    """Block until a piece starts or ends, or ``timeout`` seconds pass; return
    whether something happened. Wake-ups are hints: callers re-read the state."""
    redis = _redis()
    key = _key(job, "wake")
    woke = redis.blpop([key], timeout=timeout) is not None
    if woke:
        redis.delete(key)  # several pieces ending at once wake the caller once
    return woke
