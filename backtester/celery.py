"""The Celery application of ``celery -A backtester worker``.

Configured from the Django settings under the ``CELERY_`` prefix. The tasks are
in ``backtester.execution.tasks``; ``backtester/__init__.py`` does not import
this module (as Celery's Django guide suggests), because importing Celery costs
about 0.1 s at every start of the web server and of every management command,
and nothing needs it unless BACKTEST_EXECUTOR is ``celery``: the Celery
executor imports it then, and ``celery -A backtester`` finds it by its name.
"""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtester.settings")

app = Celery("backtester")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks of the installed apps (their ``tasks`` modules), and the executors'.
app.autodiscover_tasks()
app.autodiscover_tasks(["backtester.execution"])


@worker_process_init.connect
def _prepare_process(**kwargs: object) -> None:
    """Each worker process keeps the coins it loads (WORKER_PRICE_CACHE_MB):
    the blocks of a sweep and the runs after it load the same coins again. And
    it keeps the memory it frees for its next task (see ``keep_freed_memory``).
    And it beats, so a monitor sees at once when it is killed (liveness.py).
    And it loads the engine's compiled kernels before its first task.
    """
    from django.conf import settings

    from backtester.execution import liveness
    from prices import cache
    from strategies.compiled import kernels_load

    liveness.start_beating()
    kernels_load()

    cache.keep_local(settings.WORKER_PRICE_CACHE_MB)
    keep_freed_memory()


def keep_freed_memory(megabytes: int = 256) -> bool:
    """Ask glibc's allocator to keep up to ``megabytes`` of freed memory mapped.

    By default it returns freed blocks of a few hundred kB and more to the
    system, and the next task's arrays fault fresh pages in (system time): a
    worker process does the same work task after task, so keeping them pays.
    Returns False where the allocator is not glibc's.
    """
    import ctypes
    import ctypes.util

    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    size = megabytes << 20
    # Blocks up to 32 MB (glibc's largest threshold on 64-bit) from the heap,
    # and up to ``size`` of its free top kept.
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(
        mallopt(m_trim_threshold, size)
    )
