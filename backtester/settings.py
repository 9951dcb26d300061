"""Settings for the backtesting lab, read from the environment in one place.

Every variable is listed in ``.env.example``. Without any environment the project
runs on the embedded defaults: a SQLite file, the local-memory cache and the
in-memory channel layer.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is optional (`make` writes one with DEBUG=true for a
# development checkout); real environment variables win over it.
ENV_FILE = Path(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE, overwrite=False)

# Off unless asked for: a server started with no configuration must not show
# tracebacks or run with a known secret key.
DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
# An empty SECRET_KEY= line (as in .env.example) counts as unset.
SECRET_KEY = env.str("SECRET_KEY", default="") or (_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off (for local development set "
        "DEBUG=true, e.g. in .env; see .env.example)."
    )

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first so that `runserver` serves ASGI (HTTP and websockets).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "prices",
    "backtester.runs",
    "backtester.sweeps",
    "backtester.portfolio",
    "backtester.library",
]

MIDDLEWARE = [
    # First: /healthz is answered for any Host header and over plain HTTP.
    "backtester.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a locked-out login attempt (see AXES_* below).
    "axes.middleware.AxesMiddleware",
    # The site's own 404 page, DEBUG or not.
    "backtester.not_found.NotFoundPageMiddleware",
]

ROOT_URLCONF = "backtester.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "backtester.asgi.application"

# --- Database -------------------------------------------------------------------
DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once (the web server and a command);
    # the busy timeout makes a second writer wait instead of failing at once.
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA busy_timeout=20000;"
            ),
        }
    )
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Tests use a file too, not Django's shared-cache in-memory database: there
    # concurrent writers (runner threads storing results and heartbeats while a
    # test reads) fail at once with "database table is locked" instead of
    # waiting out the busy timeout, and the file is what the demo runs on.
    import tempfile

    _db["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"btlab-test-{os.getpid()}.sqlite3")
    }
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and channel layer -------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Price arrays are stored as raw bytes, everything else pickled.
                "SERIALIZER": "prices.cache.PassthroughSerializer",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 2,
            },
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="btlab"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis' layer, repaired so that no message is lost to a
            # disconnecting client and a Redis outage closes no socket.
            "BACKEND": "backtester.layers.RedisChannelLayer",
            "CONFIG": {
                # A consumer waits for its next message with a 5 s blocking
                # pop, and redis-py's default read timeout is also 5 s: a
                # socket silent that long (a sweep's first cell on a busy
                # server) could time out on the client just before Redis
                # answered "nothing yet", and the consumer died with 1011.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                # A full run emits hundreds of events to one consumer channel; the
                # default capacity of 100 would drop the overflow.
                "capacity": env.int("CHANNEL_CAPACITY", default=5000),
                "expiry": 120,
                "prefix": env.str("CHANNEL_PREFIX", default="btlab"),
            },
        }
    }
else:
    CACHES = {
        "default": {
            # In the server's own memory: bounded in bytes, not only entries
            # (48 coins x 5 years of hourly arrays take 100 MB, 200 coins 420).
            "BACKEND": "prices.cache.BoundedLocMemCache",
            "LOCATION": "btlab",
            "OPTIONS": {
                "MAX_ENTRIES": 10_000,
                "MAX_BYTES": env.int("PRICE_CACHE_LOCAL_MB", default=256) * 2**20,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": env.int("CHANNEL_CAPACITY", default=5000)},
        }
    }

# Seconds a loaded price array stays in the cache.
PRICE_CACHE_TTL = env.int("PRICE_CACHE_TTL", default=3600)
# Fill the cache with every active coin's full history when the run page opens.
PRICE_CACHE_WARM = env.bool("PRICE_CACHE_WARM", default=True)
PRICE_IMPORT_MAX_MB = env.int("PRICE_IMPORT_MAX_MB", default=256)
MARKET_DATA_URL = env.str("MARKET_DATA_URL", default="https://data.binance.vision")
# Worker threads that compute backtests (one shared pool per process).
BACKTEST_WORKERS = env.int("BACKTEST_WORKERS", default=0) or None
# Threads (each with its own database connection) that load price chunks. Two
# PostgreSQL queries in flight use two server processes; SQLite reads build
# Python rows under the GIL, so a second reader only slows both down (measured:
# 48 coins x 5 years, 3.9 s with one, 5.7 s with two). A run's chunks of one
# coin load on one more thread, one at a time (see execution/pool.py).
BACKTEST_LOADERS = env.int("BACKTEST_LOADERS", default=0) or (
    2 if _db["ENGINE"].endswith("postgresql") else 1
)
# Bars from which a coin's jobs are computed (and, on Celery, stored and
# published) one a piece: five years of hourly bars (43,800) or of 15-minute bars
# (175,200) stay whole, a year of 1-minute bars (525,600) is split
# (execution/handles.py, coin_parts).
BACKTEST_SPLIT_BARS = env.int("BACKTEST_SPLIT_BARS", default=250_000)
# Coins per price load of a run: a small first chunk (the first result comes
# quickly), then larger ones.
BACKTEST_FIRST_CHUNK = 4
BACKTEST_CHUNK = 16
# Bars per chunk after the first, sized on the first chunk's longest series:
# 16 coins of five years hourly (700,800 bars) fit; a coin-year of minutes
# (525,600 bars, 25 MB) goes one at a time rather than 16 (400 MB a chunk).
# Measured on 48 coin-years of minutes (bench/scale.py --interval 1m): daphne's
# peak 3.1 GB with chunks of 16, 1.48 GB with 2M bars (3 coins), 1.05 GB
# with 1M (1 coin).
BACKTEST_CHUNK_BARS = env.int("BACKTEST_CHUNK_BARS", default=1_000_000)
# Chunks a run holds at once (loading, or loaded with coins left to compute): one
# computing while two load keeps both loading threads busy on a cold cache, and
# bounds a run's bars whatever its coin count (48 coins' at most; 200 coins x 5
# years hourly is 420 MB).
BACKTEST_CHUNKS_HELD = max(1, env.int("BACKTEST_CHUNKS_HELD", default=3))
# glibc malloc arenas of the web server (0: glibc's default, eight per core):
# each thread that frees arrays keeps its own arena's high-water mark. W over
# 48 coin-years of minutes (bench/scale.py --interval 1m): daphne's peak 1030
# MB with the default, 811 MB with 2.
MALLOC_ARENAS = env.int("MALLOC_ARENAS", default=2)
# Combinations per unit of sweep work (one coin, one block): a small first block
# for a quick first heatmap cell, then larger ones that share more indicators.
# Each block costs a coin about 4 ms of tables and averages before its first
# combination: measured on sweep S (48 coins x 5 years, one thread), 53 ms a
# coin in blocks of 12 then 48, 45 ms in 2 then 58, 32 ms as one block.
SWEEP_FIRST_BLOCK = env.int("SWEEP_FIRST_BLOCK", default=2)
SWEEP_BLOCK = env.int("SWEEP_BLOCK", default=58)
# Coins per Celery task of a sweep (one block each): one price load, one insert
# and one set of state updates serve them all. Sweep S on 2 worker processes:
# 1.8 s with 1 coin a task, 1.6 s with 6, 1.5 s with 12.
SWEEP_TASK_COINS = env.int("SWEEP_TASK_COINS", default=12)
# Backtests (combinations x coins) one user's active sweeps and walk-forwards
# may add up to: 10,000 combinations on 48 coins is already 480,000, minutes of
# every worker. 0: no cap.
SWEEP_MAX_BACKTESTS = env.int("SWEEP_MAX_BACKTESTS", default=500_000)
# Megabytes of price series each Celery worker process keeps from the shared
# cache (48 coins x 5 years hourly: about 100 MB); 0 reads Redis every task.
WORKER_PRICE_CACHE_MB = env.int("WORKER_PRICE_CACHE_MB", default=256)
# Megabytes of price series a web server keeps from Redis between runs (48
# coins x 5 years hourly: 101 MB), each series at most SERVER_PRICE_SERIES_MB:
# read from Redis, a warm all-coins run's loads took 60-70 ms a chunk of 16
# coins beside the computing threads, and the engine waited for them. A
# coin-year of minutes (25 MB) is not kept: minute runs cycle through more
# coins than this holds, and a server's memory is bounded (bench/scale.py).
SERVER_PRICE_CACHE_MB = env.int("SERVER_PRICE_CACHE_MB", default=128)
SERVER_PRICE_SERIES_MB = env.float("SERVER_PRICE_SERIES_MB", default=8.0)
# Backtest jobs allowed to wait in the pool before new runs are refused.
BACKTEST_MAX_QUEUED_RUNS = env.int("BACKTEST_MAX_QUEUED_RUNS", default=8)
# Active runs one user (an anonymous visitor: one client address) may have in a
# process; at least one slot always stays free for somebody else.
BACKTEST_MAX_RUNS_PER_USER = env.int("BACKTEST_MAX_RUNS_PER_USER", default=2)
# Runs one user may start per minute (counted in the cache, so all processes
# sharing Redis count together); 0 turns the limit off.
BACKTEST_RUNS_PER_MINUTE = env.int("BACKTEST_RUNS_PER_MINUTE", default=20)
# An active run's heartbeat, in seconds; a run left "running" with no heartbeat
# for BACKTEST_STALE_AFTER seconds (its server stopped) is marked failed.
BACKTEST_HEARTBEAT = env.float("BACKTEST_HEARTBEAT", default=15.0)
BACKTEST_STALE_AFTER = env.int("BACKTEST_STALE_AFTER", default=120)
# Python modules that register strategies (strategies.registry.register) when
# imported; every web process and Celery worker imports them at start-up.
BACKTEST_STRATEGY_MODULES = env.list("BACKTEST_STRATEGY_MODULES", default=[])
BACKTESTS_REQUIRE_LOGIN = env.bool("BACKTESTS_REQUIRE_LOGIN", default=False)
if BACKTESTS_REQUIRE_LOGIN:
    # Every page needs a logged-in user except those marked login_not_required
    # (the login page, /healthz); the websocket consumer checks the same setting.
    MIDDLEWARE.append("django.contrib.auth.middleware.LoginRequiredMiddleware")

# --- Where backtests run ------------------------------------------------------------
# "threads": the shared thread pool of the web process (the embedded default, no
# servers needed). "celery": runs are split into tasks for `celery -A backtester
# worker` processes on any host that reaches Redis and the database.
BACKTEST_EXECUTOR = env.str("BACKTEST_EXECUTOR", default="threads")
if BACKTEST_EXECUTOR not in ("threads", "celery"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"BACKTEST_EXECUTOR must be threads or celery: {BACKTEST_EXECUTOR!r}"
    )
if BACKTEST_EXECUTOR == "celery" and not REDIS_URL:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "BACKTEST_EXECUTOR=celery needs REDIS_URL: Redis is the task broker, the "
        "price cache the workers read and the channel layer they publish to."
    )
# Seconds a run's tasks may wait for a worker to start the first one before the
# run fails (while some worker answers a ping, the run keeps waiting: they are
# busy, not gone).
BACKTEST_TASK_PICKUP_TIMEOUT = env.float("BACKTEST_TASK_PICKUP_TIMEOUT", default=10.0)
# Seconds after which the broker hands a task whose worker died (delivered, never
# acknowledged) to another worker. Longer than the longest task (a coin's jobs,
# or a block of sweep combinations: seconds), or a slow task would run twice
# (harmless, as storing is idempotent, but wasted).
BACKTEST_TASK_VISIBILITY_TIMEOUT = env.int(
    "BACKTEST_TASK_VISIBILITY_TIMEOUT", default=120
)
# Pieces of one job queued or running on workers at a time; more are sent as
# they end. A large sweep then never floods the queue: another user's job waits
# behind a few of its pieces, not hundreds. About twice the worker processes
# (fewer leaves workers idle between pieces); 0 sends every piece at once.
BACKTEST_TASKS_IN_FLIGHT = env.int("BACKTEST_TASKS_IN_FLIGHT", default=8)
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BACKTEST_TASK_VISIBILITY_TIMEOUT,
    # Look for tasks of dead workers every few seconds, not every 100 s (the
    # default interval x throttle), so recovery takes about the timeout.
    "unacked_restore_interval": min(10, max(1, BACKTEST_TASK_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
    # The lock a worker holds while it restores such tasks expires after this
    # many seconds (default 300): a worker killed holding it would otherwise
    # stop every other worker from restoring anything for five minutes.
    "unacked_mutex_expire": 10,
    # Ten priority levels (0 taken first): runs ahead of sweeps, a sweep's
    # early blocks ahead of another's late ones (execution/celery.py).
    "priority_steps": list(range(10)),
}
# A task is acknowledged when it has finished, not when a worker takes it: a
# worker killed mid-task leaves it to another worker (storing is idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task at a time per worker process: none sits reserved behind a busy one.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Results go to the database and the channel layer, never to a result backend.
CELERY_TASK_IGNORE_RESULT = True
# Celery closes the database connection around every task unless told to reuse
# it: a new PostgreSQL connection per task cost more than computing a coin.
# Tasks check their connection themselves (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1000

# --- Auth ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"

# Failed logins are throttled with django-axes, per (user name, client address)
# pair, in the database (so restarts forget nothing and it works on SQLite and
# PostgreSQL): LOGIN_FAILURE_LIMIT failures lock that name from that address out
# for LOGIN_LOCKOUT_MINUTES; a successful login resets its count. Locking by the
# name alone would let anyone lock any account (the admin's) out from anywhere,
# and by the address alone would lock everyone behind one NAT out at once.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Attempts made while locked are not recorded: the cool-off runs from the failure
# that locked, so a locked pair is free again LOGIN_LOCKOUT_MINUTES later however
# often it is tried meanwhile (axes' default restarts the clock on each try).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind nginx (and a load balancer) REMOTE_ADDR is the proxy's: TRUSTED_PROXIES
# says how many proxies append to X-Forwarded-For, so the client is found there.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "backtester.auth.client_ip"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Content-Security-Policy (django-csp) --------------------------------------------
# Scripts, styles, images and sockets come from this site only: no inline script,
# style element or style attribute, no eval, nothing from another origin, no
# framing. The templates keep their scripts and styles in static files and pass
# data through json_script (a data block, which the policy does not run).
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # The nonce admits the one empty <style> element the chart library
        # fills through the CSSOM (run_detail.html); nothing inline is written.
        "style-src": [SELF, NONCE],
        # Plotly's "download as PNG" and its own icons use data: images.
        "img-src": [SELF, "data:"],
        # 'self' covers ws:/wss: on the page's own host in CSP Level 3 browsers.
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- I18N -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# The charting library is served from the plotly package installed from PyPI, so
# no third-party JavaScript is committed or fetched from elsewhere at run time.
import plotly  # noqa: E402

STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
# Serve files straight from the app directories while developing (no
# collectstatic needed for `make demo`); production serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
if DEBUG:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security behind HTTPS ---------------------------------------------------------
SECURE_SSL = env.bool("SECURE_SSL", default=False)
if SECURE_SSL:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging ------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_STREAM = env.str("LOG_STREAM", default="stdout")
if LOG_STREAM not in ("stdout", "stderr"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_STREAM must be stdout or stderr: {LOG_STREAM!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            # stdout by default (what container platforms collect); commands
            # whose stdout is data (`backtest --format json|csv`) move it to
            # stderr themselves.
            "stream": f"ext://sys.{LOG_STREAM}",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "prices": {"level": LOG_LEVEL},
        "backtester": {"level": LOG_LEVEL},
        "django": {"level": env.str("DJANGO_LOG_LEVEL", default="WARNING")},
    },
}

if _db["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite builds the covering index without its INCLUDE columns; the loading
    # query still uses it, so the warning adds nothing there.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
