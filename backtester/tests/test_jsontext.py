"""The websocket's JSON text (backtester/jsontext.py) against the standard library."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np

from backtester import jsontext


def test_json_text_is_valid_json_for_what_events_hold():
    value = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "f64": np.float64(1.25),
        "i64": np.int64(7),
        "list": [1, 2.5, None, True, "é"],
        3: "key",
    }
    text = jsontext.dumps(value)
    decoded = json.loads(text)  # the standard library accepts it
    assert decoded == {
        "nan": None, "inf": None, "f64": 1.25, "i64": 7,
        "list": [1, 2.5, None, True, "é"], "3": "key",
    }  # fmt: skip
    # The same numbers as the standard library's text, to the last digit.
    plain = {"x": 0.1 + 0.2, "y": -34.46851715631269, "z": 1e-300, "n": 10**18}
    assert json.loads(jsontext.dumps(plain)) == json.loads(json.dumps(plain))
    assert all(
        math.isclose(a, b, rel_tol=0)
        for a, b in zip(
            json.loads(jsontext.dumps(plain)).values(), plain.values(), strict=True
        )
    )


def test_json_text_falls_back_for_types_it_does_not_know():
    assert json.loads(jsontext.dumps({"d": Decimal("1.5")})) == {"d": "1.5"}
