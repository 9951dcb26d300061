"""Read a price file in bounded blocks of whole lines, whatever the file holds.

A file (plain or gzip) is decompressed a block at a time; every block ends at a
line end, no line may be longer than ``max_line`` bytes and the file may not
decompress past ``max_bytes``. So a gzip bomb, a file without line ends or a
row of a million columns is refused after reading one block, never held whole.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

BLOCK_BYTES = 4 << 20
MAX_LINE_BYTES = 4096
MAX_FILE_BYTES = 256 << 20
# Offending values are shown in messages up to this many characters.
SHOWN_CHARS = 40


class ReadError(ValueError):
    """A file that cannot be read within the limits; line is 1-based or None."""

    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(problem)


def shown(value: object) -> str:
    """Return ``repr(value)`` cut to SHOWN_CHARS characters, marked when cut."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 1]}\u2026 ({len(str(value)):,} characters)"


@dataclass(frozen=True)
class Block:
    """Whole lines of a file, ending with a line end; ``first_line`` is 1-based."""

    data: bytes
    first_line: int
    lines: int


def _open(path: Path) -> BinaryIO:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReadError(None, f"cannot read file ({exc.strerror})") from exc
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


def _check_lines(ends: np.ndarray, first_line: int, max_line: int) -> None:
    lengths = np.diff(ends, prepend=-1) - 1
    too_long = np.flatnonzero(lengths > max_line)
    if too_long.size:
        raise ReadError(
            first_line + int(too_long[0]),
            f"line longer than {max_line:,} bytes",
        )


def blocks(
    path: str | Path,
    *,
    block_bytes: int | None = None,
    max_line: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Iterator[Block]:
    """Yield the file's lines in blocks of about ``block_bytes`` decompressed bytes.

    Raise ReadError naming the line when a line is too long, and when the file
    decompresses past ``max_bytes``. A UTF-8 byte order mark is dropped.
    """
    block_bytes = block_bytes or BLOCK_BYTES
    max_line = max_line or MAX_LINE_BYTES
    path = Path(path)
    handle = _open(path)
    carry = b""
    total = 0
    line = 1
    first = True
    try:
        with handle:
            while True:
                try:
                    chunk = handle.read(block_bytes)
                except (OSError, EOFError, zlib.error) as exc:
                    raise ReadError(None, f"corrupt gzip data ({exc})") from exc
                total += len(chunk)
                if total > max_bytes:
                    raise ReadError(
                        line,
                        f"file is larger than {max_bytes / 2**20:,.0f} MB "
                        "decompressed (PRICE_IMPORT_MAX_MB)",
                    )
                if first:
                    chunk = chunk.removeprefix(b"\xef\xbb\xbf")
                    first = False
                data = carry + chunk if carry else chunk
                if not chunk:  # end of file: the last line may lack its end
                    if data:
                        if len(data) > max_line:
                            raise ReadError(
                                line, f"line longer than {max_line:,} bytes"
                            )
                        yield Block(data + b"\n", line, 1)
                    return
                last = data.rfind(b"\n")
                if last < 0:
                    carry = data
                else:
                    whole, carry = data[: last + 1], data[last + 1 :]
                    ends = np.flatnonzero(np.frombuffer(whole, np.uint8) == 10)
                    _check_lines(ends, line, max_line)
                    yield Block(whole, line, len(ends))
                    line += len(ends)
                if len(carry) > max_line:
                    raise ReadError(line, f"line longer than {max_line:,} bytes")
    except OSError as exc:  # gzip errors raised while closing
        raise ReadError(None, f"corrupt gzip data ({exc})") from exc
