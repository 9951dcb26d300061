"""The hostile families import without Django and hold messages of every kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_families_import_without_django_set_up():
    code = (
        "import sys; import backtester.tests.hostile_families, "
        "prices.tests.hostile_files; print('django' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_every_family_is_non_empty_and_every_message_is_json_text():
    from backtester.tests import hostile_families as f
    from prices.tests import hostile_files as p

    runs = f.run_messages()
    jobs = f.job_messages()
    assert len(runs) > 500 and len(jobs) > 300
    assert all(isinstance(text, str) for text, _, _ in runs)
    kinds = {message["type"] for message, _, _ in jobs}
    assert {"sweep", "walk_forward", "portfolio_sweep", "attach", "resend"} <= kinds
    assert all(json.dumps(message) for message, _, _ in jobs)
    assert f.QUERY_STRINGS and f.OVERSIZE
    assert p.BAD and p.UNUSABLE and p.OUT_OF_RANGE and p.BAD_SYMBOLS
