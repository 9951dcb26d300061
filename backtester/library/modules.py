"""Load the Python strategy modules named in BACKTEST_STRATEGY_MODULES.

Each module registers its strategies into ``strategies.registry`` when
imported (``register(spec)``); importing it at start-up in every web process
and Celery worker makes its keys run everywhere a built-in's key does.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def load_configured() -> list[str]:
    """Import every configured module; ImproperlyConfigured names a failing one."""
    configured = getattr(settings, "BACKTEST_STRATEGY_MODULES", None) or []
    names = [name.strip() for name in configured if name.strip()]
    for name in names:
        try:
            import_module(name)
        except Exception as exc:
            # A typo in the setting should stop start-up with its name, not
            # leave a strategy missing on some workers.
            raise ImproperlyConfigured(
                f"BACKTEST_STRATEGY_MODULES: cannot load {name!r}: {exc}"
            ) from exc
    return names
