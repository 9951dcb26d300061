"""What a task message carries: ids and the run's spec as plain JSON, no prices.

The spec is encoded field by field from the dataclass, so a setting added to
the spec's class travels to the workers without a change here (its value must be JSON:
numbers, strings, lists, dicts; a datetime goes as ISO-8601, a dataclass such
as the risk settings as a dict of its fields, rebuilt from the field's type).
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime

from backtester.execution import registry
from backtester.execution.handles import JobSpec

_DATETIME = "__datetime__"


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {_DATETIME}:
            return datetime.fromisoformat(value[_DATETIME])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def spec_dump(spec: JobSpec) -> dict:
    """Return the spec as a JSON-serializable dict."""
    return {f.name: _encode(getattr(spec, f.name)) for f in dataclasses.fields(spec)}


def spec_load(payload: dict, spec_type: type | None = None) -> JobSpec:
    """Rebuild the spec :func:`spec_dump` encoded, as ``spec_type`` (by default
    the class the runs app registered as the ``run`` kind's ``spec``), with
    tuples where it has them."""
    spec_type = spec_type or registry.handler("run", "spec")
    values = {name: _decode(value) for name, value in payload.items()}
    for name, hint in typing.get_type_hints(spec_type).items():
        if dataclasses.is_dataclass(hint) and isinstance(values.get(name), dict):
            values[name] = hint(**values[name])
    values["jobs"] = tuple((key, dict(params)) for key, params in values["jobs"])
    if values.get("symbols") is not None:
        values["symbols"] = tuple(values["symbols"])
    return spec_type(**values)
