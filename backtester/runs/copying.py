"""Store a run's result rows on PostgreSQL with one binary COPY.

``bulk_create`` sends an ``INSERT`` whose parameters psycopg2 writes into the
statement as text: each result's two packed column values (its trade preview
and equity curve, about 14 kB) go as hex, twice their size, and the 48 rows of
one store became about 1.3 MB of SQL built under the GIL, beside the threads
computing the run. A binary COPY sends the same values as they are, with no
model instances or per-field preparation. What is stored is the same: the
values come from ``result_values``, which ``result_instance`` uses too, and
the table's constraints hold as for an insert (a duplicate fails the COPY).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from datetime import UTC, datetime

from backtester import jsontext
from backtester.runs.fields import pack_columns

# PostgreSQL's binary COPY: a signature, flags and header extension length,
# then per row a field count and each field as its length (-1: NULL) and bytes.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NULL = struct.pack(">i", -1)
_INT8 = struct.Struct(">iq")
_INT4 = struct.Struct(">ii")
_FLOAT8 = struct.Struct(">id")

# Each stored column and how its value is sent.
COLUMNS = (
    ("run_id", "int8"), ("symbol", "text"), ("strategy", "text"),
    ("params", "jsonb"), ("params_key", "text"), ("seq", "int4"),
    ("first_bar", "timestamptz"), ("last_bar", "timestamptz"), ("bars", "int4"),
    ("total_return_pct", "float8"), ("buy_hold_return_pct", "float8"),
    ("sharpe", "float8"), ("max_drawdown_pct", "float8"), ("num_trades", "int4"),
    ("win_rate_pct", "float8"), ("metrics", "jsonb"), ("trades", "columns"),
    ("equity", "columns"),
)  # fmt: skip


def _field(kind: str, value: object) -> bytes:
    if value is None:
        return _NULL
    if kind == "int8":
        return _INT8.pack(8, value)
    if kind == "int4":
        return _INT4.pack(4, value)
    if kind == "float8":
        return _FLOAT8.pack(8, value)
    if kind == "timestamptz":
        # Microseconds since 2000-01-01 UTC.
        delta = value - _PG_EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return _INT8.pack(8, micros)
    if kind == "text":
        data = value.encode()
    elif kind == "jsonb":
        data = b"\x01" + jsontext.dumps(value).encode()  # jsonb's version 1
    else:  # packed NumPy columns, as ColumnsField stores them
        data = pack_columns(value)
    return struct.pack(">i", len(data)) + data


def copy_payload(values: Sequence[dict]) -> bytes:
    """Return the binary COPY data of rows given as ``{column: value}``."""
    count = struct.pack(">h", len(COLUMNS))
    parts = [SIGNATURE]
    for row in values:
        parts.append(count)
        parts.extend(_field(kind, row[name]) for name, kind in COLUMNS)
    parts.append(TRAILER)
    return b"".join(parts)


def results_copy(connection, table: str, values: Sequence[dict]) -> None:
    """Insert rows given as ``{column: value}`` into ``table`` with one COPY."""
    if not values:
        return
    names = ", ".join(connection.ops.quote_name(name) for name, _ in COLUMNS)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {connection.ops.quote_name(table)} ({names}) "
            "FROM STDIN (FORMAT binary)",
            io.BytesIO(copy_payload(values)),
        )
