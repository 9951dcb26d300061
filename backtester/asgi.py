"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtester.settings")
# Initialise Django (apps, settings) before importing anything that uses models.
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

from backtester.arenas import malloc_arenas_limit  # noqa: E402

# Before the server's threads first allocate (see MALLOC_ARENAS in settings).
malloc_arenas_limit(settings.MALLOC_ARENAS)

if settings.REDIS_URL:
    from prices.cache import keep_local

    # The coins of the last runs stay here, in front of Redis (without Redis
    # the price cache is this process's memory already).
    keep_local(settings.SERVER_PRICE_CACHE_MB, settings.SERVER_PRICE_SERIES_MB)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from backtester.execution.boot import jobs_mark_stale_at_boot  # noqa: E402
from backtester.portfolio.services import portfolios_mark_stale  # noqa: E402
from backtester.portfolio.sweep_services import psweeps_mark_stale  # noqa: E402
from backtester.routing import websocket_urlpatterns  # noqa: E402
from backtester.runs.services import runs_mark_stale  # noqa: E402
from backtester.sweeps.services import sweeps_mark_stale  # noqa: E402
from strategies.compiled import kernels_load  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# A server starting after a crash marks the jobs its dead predecessor left
# running (and their stored counts) at once, not when a page is first read, and
# stops their pieces still queued for workers: every kind of job a server
# process owns (a record with an ``owner``).
STALE_MARKERS = {
    "runs": runs_mark_stale,
    "sweeps": sweeps_mark_stale,
    "portfolio runs": portfolios_mark_stale,
    "portfolio sweeps": psweeps_mark_stale,
}
threading.Thread(
    target=jobs_mark_stale_at_boot,
    args=(STALE_MARKERS,),
    name="jobs-mark-stale",
    daemon=True,
).start()

# The engine's compiled kernels load beside the first connections rather than
# inside the first run, whose first result would wait for them.
threading.Thread(target=kernels_load, name="kernels-load", daemon=True).start()
