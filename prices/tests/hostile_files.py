"""Price files the importer must refuse, by family.

``test_importers.py`` parses each; ``bench/hostile.py`` imports each through
``manage.py import_prices`` and counts the refusals. Plain data.
"""

from __future__ import annotations

HEADER = "timestamp,open,high,low,close,volume\n"
# A row each, after the header and before a good row: (row, line, problem).
BAD = [
    ("2024-01-01T00:00:00Z,ten,12,9,11,4\n", 2, "bad open value 'ten'"),
    ("2024-01-01T00:00:00Z,10,12,9,,4\n", 2, "bad close value"),
    ("2024-13-01T00:00:00Z,10,12,9,11,4\n", 2, "bad timestamp"),
    ("2024-01-01T00:00:00Z,10,8,9,9.5,4\n", 2, "high is below low"),
    ("2024-01-01T00:00:00Z,10,12,9,11,-4\n", 2, "volume is negative"),
    ("2024-01-01T00:00:00Z,0,12,9,11,4\n", 2, "prices must be positive"),
    ("2024-01-01T00:30:00Z,10,12,9,11,4\n", 2, "not aligned"),
    ("2024-01-01T00:00:00Z,10,12,9,11,4,7\n", 2, "expected 6 columns, found 7"),
]


# Whole files: (text, problem).
UNUSABLE = [
    ("", "file is empty"),
    (HEADER, "no data rows"),
    ("time,o,h,l,c,v\n2024-01-01T00:00:00Z,1,1,1,1,1\n", "unrecognised format"),
    ("timestamp,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n", "header"),
]
# Bars from the epoch to one day past the clock: a bar of year 1 or 9999 would
# break every run over its coin.
OUT_OF_RANGE = [
    ("0001-01-01T00:00:00Z", "before 1970-01-01"),
    ("1969-12-31T23:00:00Z", "before 1970-01-01"),
    ("9999-12-31T23:00:00Z", "more than a day in the future"),
    ("2200-01-01T00:00:00Z", "more than a day in the future"),
]


# Files named (or given a symbol) no coin may have: (file name, --symbol, shown).
BAD_SYMBOLS = [
    ("=CMDUSDT.csv", None, "'=CMD'"),
    ("X.csv", "<svg/onload=alert(1)>", "'<SVG/ONLOAD=ALERT(1)>'"),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZUSDT.csv", None, "'ABCDEFGHIJKLMNOPQRSTUVWXYZ'"),
    ("-1h.csv", None, "''"),
    ("X.csv", "B\u0661", "'B\u0661'"),  # an Arabic-Indic digit
]
