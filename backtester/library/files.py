"""Read a strategy's source from a file for the command line, bounded."""

from __future__ import annotations

from pathlib import Path

from backtester.library.checking import SourceRefused, source_text
from strategies.rules.language import MAX_SOURCE_BYTES


def source_read(path: str) -> str:
    """Return the text of a rule file; SourceRefused says why it cannot be used.

    At most one byte past the limit is read, so a huge file costs nothing.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise SourceRefused(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceRefused(
            f"{path}: larger than {MAX_SOURCE_BYTES:,} bytes, the limit of a strategy"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceRefused(
            f"{path}: not UTF-8 text (byte {exc.start + 1} is invalid)"
        ) from None
    return source_text(text)


def key_version(text: str) -> tuple[str, int | None]:
    """Split a command line's ``KEY[@N]`` into the key and the version number."""
    key, sep, number = text.partition("@")
    if not sep:
        return key, None
    if not number.isascii() or not number.isdigit() or int(number) < 1:
        raise SourceRefused(f"--strategy: {text[:60]!r}: expected KEY or KEY@N")
    return key, int(number)


def file_key(path: str) -> str:
    """Return the key a file's strategy runs under: its name, lower-cased."""
    stem = Path(path).name.split(".")[0].lower()
    key = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in stem
    )
    return f"file_{key}"[:40]
