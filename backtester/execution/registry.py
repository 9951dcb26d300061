"""What each kind of job's pieces compute and store, registered by its app.

Execution drives pieces of work but imports no app: an app registers, in its
``AppConfig.ready()``, the dotted paths of the functions its pieces call
(``register("run", compute="backtester.runs.compute.compute_coin", ...)``), and
the executors and Celery tasks call them by name, as Celery's own task registry
dispatches by name. A path is imported when first called, and looked up again
at each call, so a function replaced on its module (a test) is the one called.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

_handlers: dict[str, dict[str, str]] = {}
_lock = threading.Lock()


def register(kind: str, **handlers: str) -> None:
    """Register the dotted paths of ``kind``'s handlers by name."""
    with _lock:
        _handlers.setdefault(kind, {}).update(handlers)


def handler(kind: str, name: str) -> Callable[..., Any]:
    """Return ``kind``'s handler ``name``; LookupError when none is registered."""
    try:
        path = _handlers[kind][name]
    except KeyError:
        raise LookupError(
            f"no {name!r} handler registered for {kind!r} jobs "
            "(is the app that defines them installed?)"
        ) from None
    return import_string(path)


def call(kind: str, name: str, /, *args: Any, **kwargs: Any) -> Any:
    """Call ``kind``'s handler ``name`` with the arguments."""
    return handler(kind, name)(*args, **kwargs)
