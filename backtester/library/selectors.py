"""Reads for saved strategies: who sees which, and a version as a runnable spec."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.apps import apps
from django.db.models import Q, QuerySet

from backtester.library.models import (
    KEY_PATTERN,
    Strategy,
    StrategyVersion,
    source_sha256,
)
from strategies.registry import STRATEGIES, StrategySpec
from strategies.rules.program import compile_strategy

# Compiled specs kept per process, by (sha256, key, name): compiling is cheap
# but a run asks once per coin and a sweep once per block.
CACHE_SIZE = 128
_compiled: OrderedDict[tuple[str, str, str], StrategySpec] = OrderedDict()
_lock = threading.Lock()


class UnknownStrategy(LookupError):
    """No saved strategy of that key (or version) is visible to the user."""

    def __init__(self, key: object, version: object = None) -> None:
        shown = str(key)[:40]
        self.message = (
            f"unknown strategy {shown!r}"
            if version is None
            else f"strategy {shown!r} has no version {str(version)[:12]}"
        )
        super().__init__(self.message)


def strategies_visible(user, *, trusted: bool = False) -> QuerySet[Strategy]:
    """Return the saved strategies ``user`` may see and run.

    Staff (and ``trusted`` callers: the command line) see all but hidden ones;
    a logged-in user their own and the shared ones; an anonymous demo visitor
    the shared ones only.
    """
    qs = Strategy.objects.filter(hidden=False)
    if trusted or (getattr(user, "is_staff", False) and user.is_active):
        return qs
    if getattr(user, "is_authenticated", False):
        return qs.filter(Q(owner=user) | Q(shared=True))
    return qs.filter(shared=True)


def strategy_get(key: object, *, user, trusted: bool = False) -> Strategy:
    """Return the visible strategy ``key`` or raise UnknownStrategy."""
    # Not a key at all (NUL bytes, 400 characters): no query is made.
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise UnknownStrategy(key)
    found = strategies_visible(user, trusted=trusted).filter(key=key).first()
    if found is None:
        raise UnknownStrategy(key)
    return found


def strategy_editable(strategy: Strategy, *, user, trusted: bool = False) -> bool:
    """Return whether ``user`` may save versions of, or delete, ``strategy``."""
    if trusted or (getattr(user, "is_staff", False) and user.is_active):
        return True
    return bool(
        getattr(user, "is_authenticated", False) and strategy.owner_id == user.pk
    )


def version_get(strategy: Strategy, number: object = None) -> StrategyVersion:
    """Return version ``number`` of ``strategy`` (None: the latest)."""
    versions = strategy.versions.order_by("-number")
    if number is None:
        found = versions.first()
    elif isinstance(number, int) and not isinstance(number, bool) and number > 0:
        found = versions.filter(number=number).first()
    else:
        found = None
    if found is None:
        raise UnknownStrategy(strategy.key, number)
    return found


def source_spec(
    source: str, *, key: str, name: str = "", description: str = "", sha256: str = ""
) -> StrategySpec:
    """Return the compiled spec of a rule source, cached by its SHA-256.

    Raise RuleError (from the compiler) when the source is invalid.
    """
    cache_key = (sha256 or source_sha256(source), key, name or key)
    with _lock:
        if cache_key in _compiled:
            _compiled.move_to_end(cache_key)
            return _compiled[cache_key]
    spec = compile_strategy(source, key=key, name=name, description=description)
    key = cache_key
    with _lock:
        _compiled[key] = spec
        while len(_compiled) > CACHE_SIZE:
            _compiled.popitem(last=False)
    return spec


def version_spec(version: StrategyVersion) -> StrategySpec:
    """Return the compiled spec of a stored version."""
    strategy = version.strategy
    return source_spec(
        version.source,
        key=strategy.key,
        name=strategy.label,
        description=strategy.description,
        sha256=version.sha256,
    )


def strategy_resolve(
    key: str, *, version: object = None, user=None, trusted: bool = False
) -> tuple[StrategySpec, int]:
    """Return the spec and version id of saved ``key[@version]`` for ``user``.

    Raise UnknownStrategy when no such strategy or version is visible.
    """
    found = version_get(strategy_get(key, user=user, trusted=trusted), version)
    return version_spec(found), found.pk


def spec_of_version(version_id: int) -> StrategySpec:
    """Return the spec of the version a run or sweep recorded (hidden or not)."""
    found = StrategyVersion.objects.select_related("strategy").get(pk=version_id)
    return version_spec(found)


def strategy_or_key(
    key: str, versions: dict | None, sources: dict | None = None
) -> str | StrategySpec:
    """Return what the engine runs for a job's key: the recorded saved version's
    spec, an unsaved source's spec, or the key itself (a built-in or registered
    strategy)."""
    if sources and key in sources:
        return source_spec(sources[key], key=key)
    version_id = (versions or {}).get(key)
    return key if version_id is None else spec_of_version(int(version_id))


def strategy_choices(user) -> list[dict]:
    """Return the saved strategies ``user`` may run, as form schema entries."""
    out = []
    for strategy in strategies_visible(user).select_related("owner"):
        version = strategy.versions.order_by("-number").first()
        if version is None:
            continue
        entry = version_spec(version).as_dict()
        entry.update(saved=True, version=version.number, shared=strategy.shared)
        entry["name"] = f"{strategy.label} (saved)"
        out.append(entry)
    return out


def strategy_used(strategy: Strategy) -> bool:
    """Return whether any run or sweep recorded a version of ``strategy``."""
    if apps.is_installed("backtester.sweeps"):
        sweep = apps.get_model("sweeps", "Sweep")
        if sweep.objects.filter(strategy_version__strategy=strategy).exists():
            return True
    run = apps.get_model("backtester", "BacktestRun")
    # Looked up by model name, not imported: the runs app imports this one.
    return run.objects.filter(strategy_versions__has_key=strategy.key).exists()


def key_taken_by_builtin(key: str) -> bool:
    """Return whether ``key`` names a built-in or registered strategy."""
    return key in STRATEGIES or key == "all"


def cache_clear() -> None:
    """Forget every compiled spec (tests)."""
    with _lock:
        _compiled.clear()
