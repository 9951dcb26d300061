"""Hostile campaign against a real stack: PostgreSQL, Redis and daphne.

Starts throwaway PostgreSQL and Redis servers (or uses DATABASE_URL/REDIS_URL
when both are set), imports two good coins, creates a user and logs in over
HTTP, then serves the app with daphne under production settings (DEBUG off,
logins required) with its output in a log file, and:

- sends every family of malformed messages of ``backtester/tests/
  hostile_families.py`` and the hostile rule sources of
  ``strategies/tests/test_rules_fuzz.py``, for every message type, ``--passes``
  times, on one socket while the server keeps it open (a new one after a close,
  counted with its code);
- asks the pages and data endpoints with the hostile query strings (3,000 ``[``
  in ``params``, NUL characters, overlong values) and counts the statuses;
- imports the hostile price files of ``prices/tests/hostile_files.py`` (and two
  large ones: a 64 MB line, a gzip bomb) through ``manage.py import_prices``,
  counting clean refusals (non-zero exit, one ``error:`` line, no traceback),
  the importer's peak RSS and the rows written.

Prints the counts; exits 1 if the server logged a traceback, answered a 500 or
closed a socket with 1011.

    .venv/bin/python bench/hostile.py [--passes 3]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from run_ws import PY, manage, peak_rss_mb  # noqa: E402
from services import (  # noqa: E402
    _wait_for_port,
    free_port,
    postgres_server,
    redis_server,
)

from backtester.tests import hostile_families as families  # noqa: E402
from prices.tests import hostile_files  # noqa: E402
from strategies.tests.test_rules_fuzz import sources  # noqa: E402

USER, PASSWORD = "mallory", "campaign-pw-1"
GOOD_ROW = "{stamp},10,12,9,11,4\n"
# Events that start a job: a malformed message that one of these answers was
# accepted, and the job is cancelled before the next message.
STARTS = {"start", "sweep_start", "walk_forward_start", "portfolio_start"}
ENDS = {"complete", "cancelled", "error", "sweep_complete", "walk_forward_complete"}


def good_file(folder: Path, symbol: str, hours: int = 600) -> Path:
    """Write an hourly file of a gentle zig-zag that imports cleanly."""
    path = folder / f"{symbol}USDT.csv"
    start = 1_704_067_200  # 2024-01-01T00:00Z
    rows = [hostile_files.HEADER]
    for i in range(hours):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3600 * i))
        close = 100 + 10 * ((i // 24) % 2) + (i % 24) * 0.5
        rows.append(f"{stamp},{close},{close + 1},{close - 1},{close + 0.5},7\n")
    path.write_text("".join(rows))
    return path


Frame = tuple[str, str, str | bytes, str | None]


def messages(canary: str) -> list[Frame]:
    """Return (message type, label, text or bytes frame, the field its error
    must name or None) of every malformed message."""
    out: list[Frame] = []
    for text, field, label in families.run_messages():
        kind = "run" if '"type": "run"' in text else "raw"
        out.append((kind, label, text, field))
    for i, text in enumerate(families.OVERSIZE):
        out.append(("run", f"oversize[{i}]", text, None))
    for message, field, label in families.job_messages():
        out.append((message["type"], label, json.dumps(message), field))
    for message, field, label in families.portfolio_messages():
        out.append(("portfolio", label, json.dumps(message), field))
    for i, source in enumerate(sources(canary)):
        if isinstance(source, bytes):
            out.append(("binary", f"source[{i}]", source, None))
        else:
            text = json.dumps({"type": "check_strategy", "source": source})
            out.append(("check_strategy", f"source[{i}]", text, None))
    return out


class Tally:
    """Counts of one campaign."""

    def __init__(self) -> None:
        self.sent: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.other: collections.Counter = collections.Counter()
        self.closes: collections.Counter = collections.Counter()
        self.silent = 0
        self.misnamed = 0  # errors naming another field than expected
        # The label of each message a job start or a close answered.
        self.notes: list[str] = []
        self.statuses: collections.Counter = collections.Counter()
        self.status_of: dict[int | str, str] = {}


def connect(port: int, cookie: str):
    from websockets.sync.client import connect as ws_connect

    return ws_connect(
        f"ws://127.0.0.1:{port}/ws/backtests/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
        max_size=None,
        open_timeout=30,
    )


def send_all(port: int, cookie: str, frames: list, passes: int, tally: Tally) -> None:
    """Send every frame ``passes`` times, on one socket while it stays open."""
    queue = collections.deque(frames * passes)
    while queue:
        with connect(port, cookie) as ws:
            send_until_closed(ws, queue, tally)


def send_until_closed(ws, queue: collections.deque, tally: Tally) -> None:
    """Send frames from ``queue`` and count the replies until the server closes."""
    from websockets.exceptions import ConnectionClosed

    while queue:
        kind, label, frame, field = queue.popleft()
        tally.sent[kind] += 1
        try:
            ws.send(frame)
            reply = json.loads(ws.recv(timeout=30))
            while reply["type"] == "walk_forward_start":
                reply = json.loads(ws.recv(timeout=30))  # refused once found
            if reply["type"] == "error":
                tally.errors[kind] += 1
                if field is not None and reply.get("field") != field:
                    tally.misnamed += 1
                    tally.notes.append(f"{label}: names {reply.get('field')!r}")
            elif reply["type"] == "strategy_check" and not reply["ok"]:
                tally.errors[kind] += 1  # refused with line and column
            else:
                tally.other[f"{kind}:{reply['type']}"] += 1
                tally.notes.append(f"{label} ({len(frame):,} long): {reply['type']}")
                if reply["type"] in STARTS:
                    ws.send(json.dumps({"type": "cancel"}))
                    while json.loads(ws.recv(timeout=60))["type"] not in ENDS:
                        pass
        except TimeoutError:
            tally.silent += 1
            tally.notes.append(f"{label}: no reply")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "none"
            tally.closes[code] += 1
            tally.notes.append(f"{label} ({len(frame):,} long): close {code} {exc}")
            return


def start_jobs(port: int, cookie: str) -> tuple[int, int]:
    """Run one backtest and one sweep to the end; return their ids."""
    ids = []
    with connect(port, cookie) as ws:
        for message, start in (
            ({**families.VALID, "symbols": ["AAA", "BBB"]}, "start"),
            ({**families.SWEEP, "symbols": ["AAA", "BBB"]}, "sweep_start"),
        ):
            ws.send(json.dumps(message))
            while True:
                reply = json.loads(ws.recv(timeout=120))
                if reply["type"] == start:
                    ids.append(reply.get("run_id") or reply.get("sweep_id"))
                if reply["type"] in ("complete", "sweep_complete", "error"):
                    assert reply["type"] != "error", reply
                    break
    return ids[0], ids[1]


def paths(run_id: int, sweep_id: int) -> list[str]:
    """Return the pages and data endpoints a logged-in user can read."""
    run = f"/runs/{run_id}/"
    return [
        "/", "/runs/", run, f"{run}equity.json", f"{run}price.json",
        f"{run}trades.json", f"{run}trades.csv", f"{run}export.csv",
        f"/runs/compare/?run={run_id}", "/sweeps/", "/sweeps/history/",
        f"/sweeps/{sweep_id}/", f"/sweeps/{sweep_id}/export.json",
        f"/sweeps/{sweep_id}/export.csv", "/sweeps/walk-forward/", "/portfolio/",
        "/portfolio/history/", "/portfolio/sweeps/", "/strategies/",
    ]  # fmt: skip


def get(port: int, path: str, cookie: str) -> int | str:
    """Return the status of one GET, or "no answer" when the server hangs up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return "no answer"
    finally:
        conn.close()


def ask_pages(port: int, cookie: str, ids: tuple[int, int], passes: int, tally: Tally):
    """Ask every page with every hostile query string; count the statuses."""
    for _ in range(passes):
        for path in paths(*ids):
            for label, query in families.QUERY_STRINGS:
                joiner = "&" if "?" in path else "?"
                url = path + joiner + urllib.parse.urlencode(query)
                status = get(port, url, cookie)
                tally.statuses[status] += 1
                tally.status_of.setdefault(status, f"{path} {label}")


def login(port: int) -> str:
    """Log in through the login form; return the Cookie header of the session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/accounts/login/")
    page = conn.getresponse()
    html = page.read().decode()
    csrf = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode(
        {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    conn.request(
        "POST", "/accounts/login/", body,
        {"Cookie": f"csrftoken={csrf}",
         "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    answer = conn.getresponse()
    answer.read()
    found = re.search(r"sessionid=([^;]+)", answer.getheader("Set-Cookie") or "")
    if answer.status != 302 or found is None:
        raise RuntimeError(f"login failed: {answer.status}")
    return f"sessionid={found.group(1)}; csrftoken={csrf}"


def hostile_price_files(folder: Path) -> list[tuple[Path, str | None]]:
    """Write every hostile price file; return (path, --symbol or None)."""
    out: list[tuple[Path, str | None]] = []
    good = GOOD_ROW.format(stamp="2024-01-01T01:00:00Z")
    for i, (row, _, _) in enumerate(hostile_files.BAD):
        out.append((folder / f"BADROW{i}USDT.csv", hostile_files.HEADER + row + good))
    for i, (text, _) in enumerate(hostile_files.UNUSABLE):
        out.append((folder / f"UNUSABLE{i}USDT.csv", text))
    for i, (stamp, _) in enumerate(hostile_files.OUT_OF_RANGE):
        row = GOOD_ROW.format(stamp=stamp)
        out.append((folder / f"RANGE{i}USDT.csv", hostile_files.HEADER + good + row))
    written = []
    for path, text in out:
        path.write_text(text)
        written.append((path, None))
    for i, (name, symbol, _) in enumerate(hostile_files.BAD_SYMBOLS):
        path = folder / f"sym{i}" / name
        path.parent.mkdir()
        path.write_text(hostile_files.HEADER + good)
        written.append((path, symbol))
    # Large ones: a 64 MB line with no end, and 512 MB of zeros in a gzip.
    line = folder / "LONGLINEUSDT.csv"
    line.write_bytes(hostile_files.HEADER.encode() + b"9" * (64 << 20))
    bomb = folder / "BOMBUSDT.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out_file:
        chunk = b"\0" * (1 << 20)
        for _ in range(512):
            out_file.write(chunk)
    return [*written, (line, None), (bomb, None)]


COUNT_ROWS = (
    "from prices.models import Cryptocurrency, PriceBar, PriceBlock; "
    "print(Cryptocurrency.objects.count(), PriceBar.objects.count(), "
    "PriceBlock.objects.count())"
)


def import_all(env: dict, folder: Path) -> dict:
    """Import each hostile file alone; return the refusal counts."""
    # The last line: the shell may first say what it imported by itself.
    before = manage("shell", "-c", COUNT_ROWS, env=env).stdout.splitlines()[-1].split()
    files = hostile_price_files(folder)
    refused = clean = 0
    peaks_kb = []
    for path, symbol in files:
        extra = ["--symbol", symbol] if symbol is not None else []
        done = subprocess.run(
            ["/usr/bin/time", "-f", "rss %M", PY, "manage.py", "import_prices",
             str(path), *extra],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        # /usr/bin/time adds its own lines: the exit status and the peak RSS.
        lines = [
            line
            for line in done.stderr.splitlines()
            if line.strip() and not line.startswith("Command exited with")
        ]
        peaks_kb.append(int(lines.pop().split()[1]))
        refused += done.returncode != 0
        errors = [line for line in lines if line.startswith("error: ")]
        if (
            done.returncode != 0
            and len(errors) == 1
            and "Traceback" not in done.stderr
            and lines[-1].startswith("CommandError: ")
        ):
            clean += 1
        else:
            print(f"  not a clean refusal: {path.name}: {lines[-3:]}")
    after = manage("shell", "-c", COUNT_ROWS, env=env).stdout.splitlines()[-1].split()
    written = [int(b) - int(a) for a, b in zip(before, after, strict=True)]
    return {"files": len(files), "refused": refused, "clean": clean,
            "written": written, "least_mb": min(peaks_kb) / 1024,
            "peak_mb": max(peaks_kb) / 1024}  # fmt: skip


@contextlib.contextmanager
def daphne(env: dict, log: Path):
    """Serve the app with daphne on a free port, its output into ``log``."""
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
             "backtester.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_port(port, timeout=60)
            yield port, server
        finally:
            server.terminate()
            server.wait(timeout=30)


def stack_env(stack: contextlib.ExitStack, folder: Path) -> dict:
    """Return production settings on a migrated PostgreSQL + Redis, with the
    static files collected (the manifest storage refuses to render without)."""
    base = dict(os.environ, DEBUG="false", SECRET_KEY="bench-only-" + "y" * 50)
    base["STATIC_ROOT"] = str(folder / "static")
    base.update(LOG_LEVEL="WARNING", LOG_STREAM="stderr", BACKTESTS_REQUIRE_LOGIN="1")
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        base["DATABASE_URL"] = stack.enter_context(postgres_server())
        base["REDIS_URL"] = stack.enter_context(redis_server()).url
    manage("migrate", "-v0", env=base)
    manage("collectstatic", "--noinput", "-v0", env=base)
    return base


def report(tally: Tally, log: Path, imports: dict, rss_mb: float) -> bool:
    """Print the table; return whether the campaign found a defect."""
    text = log.read_text(errors="replace")
    tracebacks = text.count("Traceback")
    error_logs = sum(" ERROR " in line for line in text.splitlines())
    sent = sum(tally.sent.values())
    print(f"\n{'what':<44} {'count':>9}")
    print(f"{'messages sent':<44} {sent:>9,}")
    for kind in sorted(tally.sent):
        print(f"  {kind:<42} {tally.sent[kind]:>9,}  errors {tally.errors[kind]:,}")
    print(f"{'error events (refusals)':<44} {sum(tally.errors.values()):>9,}")
    print(f"{'  naming another field than expected':<44} {tally.misnamed:>9,}")
    print(f"{'other events':<44} {sum(tally.other.values()):>9,}")
    for kind, count in sorted(tally.other.items()):
        print(f"  {kind:<42} {count:>9,}")
    print(f"{'no reply within 30 s':<44} {tally.silent:>9,}")
    print(f"{'sockets closed by the server':<44} {sum(tally.closes.values()):>9,}")
    for code, count in sorted(tally.closes.items(), key=str):
        print(f"  close code {code!s:<31} {count:>9,}")
    print(f"{'tracebacks in the server log':<44} {tracebacks:>9,}")
    print(f"{'ERROR lines in the server log':<44} {error_logs:>9,}")
    print(f"{'HTTP requests':<44} {sum(tally.statuses.values()):>9,}")
    for status, count in sorted(tally.statuses.items(), key=str):
        print(f"  status {status!s:<35} {count:>9,}  e.g. {tally.status_of[status]}")
    print(f"{'price files imported':<44} {imports['files']:>9,}")
    print(f"  {'refused (non-zero exit)':<42} {imports['refused']:>9,}")
    print(f"  {'refused with one error line':<42} {imports['clean']:>9,}")
    coins, bars, blocks = imports["written"]
    print(f"  {'coins, bars, blocks written':<42} {f'{coins}, {bars}, {blocks}':>9}")
    # The least is a small file's: the interpreter, Django and NumPy.
    print(f"  {'importer peak RSS, largest (MB)':<42} {imports['peak_mb']:>9.0f}")
    print(f"  {'importer peak RSS, least (MB)':<42} {imports['least_mb']:>9.0f}")
    print(f"{'daphne peak RSS (MB)':<44} {rss_mb:>9.0f}")
    for note in sorted(set(tally.notes)):
        print(f"  note: {note}")
    return bool(tracebacks or tally.statuses[500] or tally.closes[1011])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3, help="rounds of messages")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="btlab-hostile-"))
    canary = folder / "canary"
    frames = messages(str(canary))
    tally = Tally()
    with contextlib.ExitStack() as stack:
        env = stack_env(stack, folder)
        goods = [str(good_file(folder, s)) for s in ("AAA", "BBB")]
        manage("import_prices", *goods, env=env)
        create = (
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({USER!r}, password={PASSWORD!r})"
        )
        manage("shell", "-c", create, env=env)
        log = folder / "daphne.log"
        with daphne(env, log) as (port, server):
            cookie = login(port)
            ids = start_jobs(port, cookie)
            began = time.perf_counter()
            send_all(port, cookie, frames, args.passes, tally)
            print(f"messages: {time.perf_counter() - began:.1f} s")
            ask_pages(port, cookie, ids, args.passes, tally)
            rss_mb = peak_rss_mb(server.pid)
        imports = import_all(env, folder)
    if canary.exists():
        print("a rule source ran code: the canary file exists")
    failed = report(tally, log, imports, rss_mb) or canary.exists()
    print(f"server log: {log}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
