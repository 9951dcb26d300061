"""Writes for saved strategies: save a new version, delete or hide."""

from __future__ import annotations

from django.db import transaction

from backtester.library.models import (
    KEY_PATTERN,
    Strategy,
    StrategyVersion,
    source_sha256,
)
from backtester.library.selectors import (
    UnknownStrategy,
    key_taken_by_builtin,
    strategy_editable,
    strategy_used,
)
from strategies.rules.errors import RuleError
from strategies.rules.program import compile_strategy

MAX_NAME = 100
MAX_DESCRIPTION = 2000


class StrategyError(ValueError):
    """A request to save or delete a strategy that cannot be done; says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def key_problem(key: object) -> str | None:
    """Return what is wrong with a new strategy key, or None."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        return (
            "key: 1-40 characters, lower-case letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if key_taken_by_builtin(key):
        return f"key: {key!r} is a built-in strategy's key"
    return None


def _text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise StrategyError(f"{name}: text of at most {limit} characters", name)
    return value.strip()


def strategy_save(
    *,
    key: str,
    source: object,
    user=None,
    trusted: bool = False,
    name: object = None,
    description: object = None,
    shared: bool | None = None,
) -> StrategyVersion:
    """Save ``source`` as the next version of ``key`` (creating the strategy).

    The source is compiled first: RuleError lists its problems and nothing is
    written. Saving the latest version's exact text again adds no version.
    ``trusted`` (the command line) may save any key; a web user needs a login
    and may only add versions to their own strategies.
    """
    problem = key_problem(key)
    if problem:
        raise StrategyError(problem, "key")
    name = _text(name, "name", MAX_NAME)
    description = _text(description, "description", MAX_DESCRIPTION)
    if not trusted and not getattr(user, "is_authenticated", False):
        raise StrategyError("log in to save strategies")
    compile_strategy(source, key=key)  # RuleError: nothing written
    owner = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        strategy = Strategy.objects.select_for_update().filter(key=key).first()
        if strategy is None:
            strategy = Strategy.objects.create(
                key=key,
                name=name or "",
                description=description or "",
                owner=owner,
                shared=bool(shared),
            )
        elif not strategy_editable(strategy, user=user, trusted=trusted):
            if strategy.shared and not strategy.hidden:
                raise StrategyError(
                    f"key: {key!r} belongs to someone else; save under another key",
                    "key",
                )
            # Another user's private strategy: as if it did not exist, but
            # its key is taken.
            raise StrategyError(f"key: {key!r} is taken; choose another", "key")
        else:
            changed = []
            for field, value in (("name", name), ("description", description)):
                if value is not None and getattr(strategy, field) != value:
                    setattr(strategy, field, value)
                    changed.append(field)
            if shared is not None and strategy.shared != shared:
                strategy.shared = shared
                changed.append("shared")
            if strategy.hidden:  # saved again by its owner: back in the lists
                strategy.hidden = False
                changed.append("hidden")
            if changed:
                strategy.save(update_fields=[*changed, "updated_at"])
        latest = strategy.versions.order_by("-number").first()
        if latest is not None and latest.sha256 == source_sha256(source):
            return latest
        version = StrategyVersion.objects.create(
            strategy=strategy,
            number=(latest.number + 1) if latest else 1,
            source=source,
        )
        strategy.save(update_fields=["updated_at"])
    return version


def strategy_delete(*, strategy: Strategy, user=None, trusted: bool = False) -> str:
    """Delete ``strategy``, or hide it when a run or sweep used it; return
    "deleted" or "hidden"."""
    if not strategy_editable(strategy, user=user, trusted=trusted):
        raise UnknownStrategy(strategy.key)
    with transaction.atomic():
        if strategy_used(strategy):
            strategy.hidden = True
            strategy.save(update_fields=["hidden", "updated_at"])
            return "hidden"
        strategy.delete()
    return "deleted"


__all__ = ["RuleError", "StrategyError", "strategy_delete", "strategy_save"]
