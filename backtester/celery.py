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
def _keep_prices(**kwargs: object) -> None:
    """Each worker process keeps the coins it loads (WORKER_PRICE_CACHE_MB):
    the blocks of a sweep and the runs after it load the same coins again."""
    from django.conf import settings

    from prices import cache

    cache.keep_local(settings.WORKER_PRICE_CACHE_MB)
