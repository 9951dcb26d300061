"""Reading a client's websocket message: size and nesting limits, strict JSON."""

from __future__ import annotations

import json

from backtester.runs.validation import RequestError

# Counted in UTF-8 bytes, as sent on the wire.
MAX_MESSAGE_BYTES = 64 * 1024
# Deeper JSON is no request (and Python's parser recurses on nesting).
MAX_JSON_DEPTH = 32


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _depth(value: object) -> int:
    """Return how deeply lists and objects nest in a parsed JSON value."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_message(text: str) -> dict:
    """Return a client message as a dict or raise RequestError saying why not."""
    # Characters never outnumber bytes: only a possible near-miss is encoded.
    if len(text) > MAX_MESSAGE_BYTES or (
        len(text) * 4 > MAX_MESSAGE_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    ):
        raise RequestError(f"message too large (limit {MAX_MESSAGE_BYTES} bytes)")
    try:
        # NaN and Infinity are Python's extensions, not JSON.
        content = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(
            f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    if _depth(content) > MAX_JSON_DEPTH:
        # Name the field that holds the deep value, as for any other bad value:
        # its path through objects ("params.fast").
        path, value, allowed = [], content, MAX_JSON_DEPTH
        while isinstance(value, dict):
            key = next((k for k, v in value.items() if _depth(v) >= allowed), None)
            if key is None:
                break
            path.append(key)
            value, allowed = value[key], allowed - 1
        field = ".".join(path) or None
        raise RequestError(
            f"{field or 'message'}: nested deeper than {MAX_JSON_DEPTH} levels",
            field,
        )
    if not isinstance(content, dict):
        raise RequestError("expected a JSON object")
    return content


# Ids are PostgreSQL bigints; a longer number is no record (and would make a
# channel-layer group name past its 100-character limit).
MAX_ID = 2**63 - 1


def record_id(content: dict, name: str, what: str) -> int:
    """Return ``content[name]`` as a record id or raise RequestError naming it."""
    value = content.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_ID
    ):
        raise RequestError(f"{name}: expected a {what} number", name)
    return value
