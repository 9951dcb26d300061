"""The root conftest's rule for skipped browser/program tests.

Only CI (BTLAB_CI, set by .ci/run, which installs Chromium, nginx and
docker-compose) turns such a skip into a failure on the real-server pass; a
newcomer's `make test` without those programs reports skips with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PROGRAM_TESTS = """
import pytest

@pytest.mark.browser
def test_needs_chromium():
    pytest.skip("chromium is not installed")

@pytest.mark.program
def test_needs_nginx():
    pytest.skip("nginx is not installed")

def test_plain():
    pytest.skip("an ordinary skip")
"""


@pytest.mark.parametrize(
    ("env", "skipped", "failed"),
    [
        ({"BTLAB_REQUIRE_SERVICES": "1"}, 3, 0),  # a newcomer's second pass
        ({"BTLAB_CI": "1"}, 3, 0),  # CI's first (SQLite) pass
        ({"BTLAB_CI": "1", "BTLAB_REQUIRE_SERVICES": "1"}, 1, 2),
    ],
)
def test_a_skipped_program_test_fails_only_in_ci(
    pytester, monkeypatch, env, skipped, failed
):
    for name in ("BTLAB_CI", "BTLAB_REQUIRE_SERVICES", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "backtester.settings")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_programs=PROGRAM_TESTS)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=skipped, failed=failed)
    if failed:
        result.stdout.fnmatch_lines(["*skipped but BTLAB_CI=1*chromium*"])
    else:
        result.stdout.fnmatch_lines(["*SKIPPED*chromium is not installed*"])
