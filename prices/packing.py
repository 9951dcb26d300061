"""Sub-hour bars packed one UTC day to a block of bytes; NumPy and zlib only.

A block holds one coin's bars of one interval on one UTC day:

* a 6-byte header: layout version, flags, the decimal exponents of the prices
  and of the volume, the number of bars;
* unless every slot of the day holds a bar, a presence bitmap (one bit per
  slot: 180 bytes for 1-minute bars);
* the byte width of each of the five value columns, then the columns' bytes
  plane by plane (a byte shuffle, all-zero planes left out), zlib-compressed.

Exchange prices and volumes are decimals with a fixed number of places (the
tick and lot sizes). When every value of a group is such a decimal, it is
stored exactly as an integer count of 10**-k: the prices as the open's gap to
the previous close, close minus open, and the two wicks (small numbers, most
often zero), the volume as it is. ``decode`` divides by 10**k, which gives back
the very float64 parsed from the decimal text, bit for bit. Prices that are no
such decimals are stored as float64 bits XORed with the previous close, the
open and the body's ends (zero where they are equal, as a minute's open and the
last close mostly are); a volume as its float64 bits. Either way a round trip
is lossless.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from prices.types import PriceSeries

DAY_SECONDS = 86_400
LAYOUT_VERSION = 1
_HEADER = struct.Struct("<BBbbH")
_FULL = 1  # every slot of the day holds a bar: no bitmap follows
_PRICES_DECIMAL = 2
_VOLUME_DECIMAL = 4
_DEFLATED = 8  # the planes are zlib-compressed
# Places tried for decimals: 12 covers the smallest exchange ticks (1e-8) with
# room; integers must stay below 2**53 to be exact in float64.
_MAX_PLACES = 12
_EXACT = 2.0**53
# zlib level 6: on shuffled bars levels 7-9 save under 1% and write slower.
_LEVEL = 6
# Planes are kept compressed only when that saves at least this share: inflating
# is most of the reading time, so a small saving is not worth it.
_WORTH_DEFLATING = 0.2
_SAMPLE = 512


class BlockError(ValueError):
    """Bytes that are not a block of this layout."""


def _places(values: np.ndarray) -> int | None:
    """Return the fewest decimal places that hold every value exactly, or None."""
    if not len(values):
        return 0
    if not np.all(np.isfinite(values)):
        return None
    sample = values[:_SAMPLE]
    for places in range(_MAX_PLACES + 1):
        scale = 10.0**places
        for part in (sample, values):
            scaled = np.rint(part * scale)
            if not (
                np.all(np.abs(scaled) < _EXACT) and np.array_equal(scaled / scale, part)
            ):
                break
        else:
            return places
    return None


def _zigzag(values: np.ndarray) -> np.ndarray:
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    values = values.view(np.uint64)
    return ((values >> np.uint64(1)).view(np.int64)) ^ -(values & np.uint64(1)).view(
        np.int64
    )


def _shuffle(table: np.ndarray) -> tuple[bytes, bytes]:
    """Return each row's byte width and its low bytes, byte-plane by byte-plane.

    Planes that are zero in every word of a row are left out (a decimal price
    step fits in a byte or two), and the planes kept lie side by side, where
    zlib finds the repeats; less to inflate makes reading faster too.
    """
    words = table.astype("<u8", copy=False)
    widths = [(int(row.max()).bit_length() + 7) // 8 for row in words]
    planes = words.view(np.uint8).reshape(len(words), -1, 8)
    data = b"".join(
        np.ascontiguousarray(planes[row, :, :width].T).tobytes()
        for row, width in enumerate(widths)
    )
    return bytes(widths), data


def _unshuffle(data: bytes, widths: bytes, out: np.ndarray) -> None:
    """Fill ``out`` (5, count, 8 bytes) from the planes :func:`_shuffle` kept."""
    count = out.shape[1]
    planes = np.frombuffer(data, np.uint8)
    if len(widths) != 5 or max(widths) > 8 or len(planes) != sum(widths) * count:
        raise BlockError("block values have the wrong length")
    at = 0
    for row, width in enumerate(widths):
        if width:
            out[row, :, :width] = (
                planes[at : at + width * count].reshape(width, count).T
            )
            at += width * count


def places_of(series: PriceSeries) -> tuple[int | None, int | None]:
    """Return the decimal places of the prices and of the volume (None: not decimal).

    Found once for many days, then given to :func:`encode` for each.
    """
    prices = np.concatenate([series.open, series.high, series.low, series.close])
    return _places(prices), _places(series.volume)


def encode(
    series: PriceSeries,
    step: int,
    places: tuple[int | None, int | None] | None = None,
) -> bytes:
    """Pack the bars of one UTC day (time-ordered, unique, aligned to ``step``)."""
    count = len(series.time)
    slots = DAY_SECONDS // step
    if not 0 < count <= slots:
        raise ValueError(f"a day holds 1 to {slots} bars of {step} s, got {count}")
    day = int(series.time[0]) // DAY_SECONDS * DAY_SECONDS
    slot = (series.time - day) // step
    if slot[-1] >= slots:
        raise ValueError("bars of one block must fall on one UTC day")
    price_places, volume_places = places or places_of(series)
    flags = 0
    table = np.empty((5, count), np.int64)
    if price_places is not None:
        flags |= _PRICES_DECIMAL
        scale = 10.0**price_places
        o, h, lo, c = (
            np.rint(column * scale).astype(np.int64) for column in series[1:5]
        )
        previous = np.r_[np.int64(0), c[:-1]]
        table[0] = o - previous
        table[1] = c - o
        table[2] = h - np.maximum(o, c)
        table[3] = np.minimum(o, c) - lo
        # The wicks are never negative; only the gap and the body need zigzag.
        table[:2] = _zigzag(table[:2]).view(np.int64)
    else:
        # Not decimals: the float64 bits, each XORed with the bits it most
        # often equals (the previous close, the open, the body's ends), so
        # equal values give zero words and near ones zero high bytes.
        o, h, lo, c = (np.asarray(column, np.float64) for column in series[1:5])
        previous = np.r_[np.float64(0), c[:-1]]
        table[0] = o.view(np.int64) ^ previous.view(np.int64)
        table[1] = c.view(np.int64) ^ o.view(np.int64)
        table[2] = h.view(np.int64) ^ np.maximum(o, c).view(np.int64)
        table[3] = lo.view(np.int64) ^ np.minimum(o, c).view(np.int64)
    if volume_places is not None:
        flags |= _VOLUME_DECIMAL
        table[4] = np.rint(series.volume * 10.0**volume_places).astype(np.int64)
    else:
        table[4] = np.asarray(series.volume, np.float64).view(np.int64)
    bitmap = b""
    if count == slots:
        flags |= _FULL
    else:
        present = np.zeros(slots, bool)
        present[slot] = True
        bitmap = np.packbits(present).tobytes()
    widths, data = _shuffle(table)
    packed = zlib.compress(data, _LEVEL)
    if len(packed) <= (1 - _WORTH_DEFLATING) * len(data):
        flags |= _DEFLATED
        data = packed
    header = _HEADER.pack(
        LAYOUT_VERSION, flags, price_places or 0, volume_places or 0, count
    )
    return header + bitmap + widths + data


def _header(payload: bytes) -> tuple[int, int, int, int]:
    try:
        version, flags, price_places, volume_places, count = _HEADER.unpack_from(
            payload
        )
    except struct.error:
        raise BlockError("block is shorter than its header") from None
    if version != LAYOUT_VERSION:
        raise BlockError(f"block layout {version} is not {LAYOUT_VERSION}")
    return flags, price_places, volume_places, count


def _values(table: np.ndarray, starts: np.ndarray, key: tuple) -> list[np.ndarray]:
    """Return the five value columns of days packed alike (``starts``: where
    each day's bars begin in ``table``, and the end)."""
    flags, price_places, volume_places = key
    if flags & _PRICES_DECIMAL:
        scale = 10.0**price_places
        gap, body = (_unzigzag(row) for row in table[:2])
        upper, lower = table[2:4].view(np.int64)
        # One running sum over all days: each day's first gap is its absolute
        # open, so the sum carried from earlier days is taken off again.
        running = np.cumsum(gap + body)
        carried = np.r_[np.int64(0), running[starts[1:-1] - 1]]
        c = running - np.repeat(carried, np.diff(starts))
        o = c - body
        prices = [
            o / scale,
            (np.maximum(o, c) + upper) / scale,
            (np.minimum(o, c) - lower) / scale,
            c / scale,
        ]
    else:
        gap, body, upper, lower = table[:4].view(np.int64)
        # Each close is the XOR of all gaps and bodies so far; as with the
        # running sum above, what earlier days carried in is XORed out again.
        running = np.bitwise_xor.accumulate(gap ^ body)
        carried = np.r_[np.int64(0), running[starts[1:-1] - 1]]
        c = running ^ np.repeat(carried, np.diff(starts))
        o = body ^ c
        close, opened = c.view(np.float64), o.view(np.float64)
        prices = [
            opened,
            (upper ^ np.maximum(opened, close).view(np.int64)).view(np.float64),
            (lower ^ np.minimum(opened, close).view(np.int64)).view(np.float64),
            close,
        ]
    if flags & _VOLUME_DECIMAL:
        volume = table[4].view(np.int64) / 10.0**volume_places
    else:
        volume = table[4].view(np.float64)
    return [*prices, volume]


def decode_many(days: list[int], payloads: list[bytes], step: int) -> PriceSeries:
    """Unpack the blocks of consecutive UTC days (epoch seconds ``days``) into
    one time-ordered series; the columns are computed for all days at once."""
    if not days:
        return PriceSeries.empty()
    slots = DAY_SECONDS // step
    bitmap_size = -(-slots // 8)
    full = np.arange(slots, dtype=np.int64) * step
    payloads = [bytes(payload) for payload in payloads]
    headers = [_header(payload) for payload in payloads]
    counts = [header[3] for header in headers]
    starts = np.r_[0, np.cumsum(counts)]
    # Every day's words land in one zeroed array: the planes left out are zero.
    words = np.zeros((5, int(starts[-1]), 8), np.uint8)
    times, keys = [], []
    for index, (day, payload, header) in enumerate(
        zip(days, payloads, headers, strict=True)
    ):
        flags, price_places, volume_places, count = header
        at = _HEADER.size
        if flags & _FULL:
            offsets = full[:count]
        else:
            bits = np.frombuffer(payload, np.uint8, bitmap_size, at)
            offsets = np.flatnonzero(np.unpackbits(bits)[:slots]) * step
            at += bitmap_size
        if len(offsets) != count:
            raise BlockError("block bitmap does not match its bar count")
        widths = payload[at : at + 5]
        raw = payload[at + 5 :]
        if flags & _DEFLATED:
            try:
                raw = zlib.decompress(raw)
            except zlib.error as exc:
                raise BlockError(f"block values are corrupt ({exc})") from None
        _unshuffle(raw, widths, words[:, starts[index] : starts[index + 1]])
        times.append(day + offsets)
        keys.append(
            (flags & (_PRICES_DECIMAL | _VOLUME_DECIMAL), price_places, volume_places)
        )
    table = words.view("<u8").reshape(5, -1).view(np.uint64)
    if len(set(keys)) == 1:
        columns = _values(table, starts, keys[0])
    else:  # days packed differently: each run of like days on its own
        columns = [np.empty(starts[-1]) for _ in range(5)]
        for key in set(keys):
            mine = [i for i, k in enumerate(keys) if k == key]
            picks = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in mine])
            bounds = np.r_[0, np.cumsum([counts[i] for i in mine])]
            for column, values in zip(
                columns, _values(table[:, picks], bounds, key), strict=True
            ):
                column[picks] = values
    return PriceSeries(np.concatenate(times), *columns)


def decode(day: int, payload: bytes, step: int) -> PriceSeries:
    """Unpack a block of the UTC day starting at epoch second ``day``."""
    return decode_many([day], [payload], step)


def day_bounds(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each UTC day's start (epoch seconds) and where its bars begin.

    ``times`` is sorted; the second array has one more entry (the end).
    """
    days = times // DAY_SECONDS
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    return days[starts] * DAY_SECONDS, np.r_[starts, len(times)]


def merge(stored: PriceSeries, incoming: PriceSeries) -> PriceSeries:
    """Return the union of two time-ordered series; at equal times incoming wins."""
    if not len(stored.time):
        return incoming
    if not len(incoming.time):
        return stored
    both = PriceSeries(
        *(np.concatenate([a, b]) for a, b in zip(stored, incoming, strict=True))
    )
    # Stable: of two bars at one time the incoming (second) one sorts last.
    order = np.argsort(both.time, kind="stable")
    times = both.time[order]
    last = np.r_[times[1:] != times[:-1], True]
    keep = order[last]
    return PriceSeries(*(column[keep] for column in both))
