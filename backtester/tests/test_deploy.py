"""The production shape: deploy checks, /healthz, and nginx in front of daphne."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from services import _wait_for_port, free_port  # noqa: E402

PROD_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k8#Vq2!pZr7$Lm4^Tx9&Wn3*Hb6(Jd1)Fs5_Gc0+Ye8=Ua2-Ro7",
    "ALLOWED_HOSTS": "lab.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://lab.example.com",
    "SECURE_SSL": "true",
    "BACKTESTS_REQUIRE_LOGIN": "true",
}


def manage(
    *args: str, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL"):
        base.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        **kwargs,
    )


def test_check_deploy_is_clean_with_a_production_environment():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert done.returncode == 0, done.stderr + done.stdout


def test_missing_secret_key_with_debug_off_fails_clearly():
    env = {**PROD_ENV}
    env.pop("SECRET_KEY")
    done = manage("check", env=env)
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


@pytest.mark.django_db
def test_healthz_reports_services(client, monkeypatch, settings, caplog):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["database"]["ok"] is True
    assert ("redis" in body["checks"]) == bool(settings.REDIS_URL)

    from backtester import health

    def broken() -> None:
        raise OSError(
            'connection to server at "db.internal" (10.0.0.7), port 5432 '
            'failed: password authentication failed for user "btlab"'
        )

    monkeypatch.setattr(health, "_database", broken)
    with caplog.at_level("ERROR", logger="backtester.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    # The service is named; its host, port and user stay in the log.
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "error": "database unavailable",
    }
    for secret in ("db.internal", "10.0.0.7", "5432", "btlab"):
        assert secret not in response.content.decode()
    assert "db.internal" in caplog.text and "database unavailable" in caplog.text


@pytest.mark.django_db
def test_healthz_answers_any_host_and_plain_http(client, settings):
    """The container health check uses 127.0.0.1 over HTTP, whatever the public
    host names and HTTPS settings are; other paths still validate the host."""
    settings.ALLOWED_HOSTS = ["lab.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400


@pytest.mark.django_db
def test_healthz_reports_redis_down(client, settings, monkeypatch):
    from backtester import health

    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    def refused() -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1")

    monkeypatch.setattr(health, "_redis", refused)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"] == "redis unavailable"
    assert "127.0.0.1:1" not in response.content.decode()


def test_debug_is_off_unless_asked() -> None:
    """With no environment and no .env file, settings refuse to start without a
    secret key (DEBUG is off); asking for DEBUG gives the development key."""
    bare = {"ENV_FILE": os.devnull}
    done = manage("check", env=bare)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr
    show = "from django.conf import settings; print(settings.DEBUG)"
    done = manage("shell", "-c", show, env={**bare, "SECRET_KEY": "s" * 50})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    # An empty SECRET_KEY= line, as in .env.example, counts as unset.
    done = manage("shell", "-c", show, env={**bare, "DEBUG": "true", "SECRET_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"


def test_login_setting_adds_the_middleware() -> None:
    show = "from django.conf import settings; print(settings.MIDDLEWARE[-1])"
    done = manage("shell", "-c", show, env={"BACKTESTS_REQUIRE_LOGIN": "true"})
    assert done.stdout.split()[-1].endswith("LoginRequiredMiddleware"), done.stderr
    done = manage("shell", "-c", show, env={"BACKTESTS_REQUIRE_LOGIN": "false"})
    assert not done.stdout.split()[-1].endswith("LoginRequiredMiddleware"), done.stderr


@pytest.mark.django_db
def test_login_required_when_configured(client, settings):
    from django.contrib.auth.models import User

    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    User.objects.create_user("trader", password="pw-123456789")
    # Through the login form: the login throttle needs the request.
    client.post("/accounts/login/", {"username": "trader", "password": "pw-123456789"})
    assert client.get("/").status_code == 200


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or the standalone ``docker-compose``."""
    docker = shutil.which("docker")
    if (
        docker
        and not subprocess.run(
            [docker, "compose", "version"], capture_output=True
        ).returncode
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.mark.program
def test_docker_compose_file_is_valid():
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}

    def config(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*compose, "-f", "docker-compose.yml", "config", "-q"],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    done = config(SECRET_KEY="x" * 50)
    assert done.returncode == 0, done.stderr
    # The production secret has no default: the file refuses to start without it.
    missing = config()
    assert missing.returncode != 0 and "SECRET_KEY" in missing.stderr


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


@pytest.mark.program
@pytest.mark.skipif(_nginx_binary() is None, reason="nginx is not installed")
def test_websocket_backtest_and_static_file_through_nginx():
    from websockets.sync.client import connect

    from backtester.runs.tests.factories import random_walk

    work = Path(tempfile.mkdtemp(prefix="btlab-nginx-"))
    os.chmod(work, 0o755)
    procs: list[subprocess.Popen] = []
    try:
        env = {
            "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            "STATIC_ROOT": str(work / "static"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        assert manage("migrate", "-v0", env=env).returncode == 0
        series = random_walk(300, seed=7)
        lines = ["timestamp,open,high,low,close,volume"]
        for t, o, h, lo, c, v in zip(*(col.tolist() for col in series), strict=True):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))
            lines.append(f"{stamp},{o!r},{h!r},{lo!r},{c!r},{v!r}")
        (work / "XYZUSDT.csv").write_text("\n".join(lines) + "\n")
        done = manage("import_prices", str(work / "XYZUSDT.csv"), env=env)
        assert done.returncode == 0, done.stderr
        assert manage("collectstatic", "--noinput", "-v0", env=env).returncode == 0

        app_port, proxy_port = free_port(), free_port()
        base = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        # As behind a TLS-terminating load balancer: plain HTTP is redirected,
        # the scheme the balancer saw is passed on by nginx.
        env["SECURE_SSL"] = "true"
        procs.append(
            subprocess.Popen(
                [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1",
                 "-p", str(app_port), "backtester.asgi:application"],
                cwd=ROOT, env={**base, **env},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        conf = (
            conf.replace("server web:8000;", f"server 127.0.0.1:{app_port};")
            .replace("listen 80;", f"listen 127.0.0.1:{proxy_port};")
            .replace("alias /app/staticfiles/;", f"alias {work / 'static'}/;")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        (work / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {work}/nginx.pid;\n"
            f"error_log {work}/error.log;\nevents {{}}\nhttp {{\n"
            f"access_log off;\nclient_body_temp_path {work}/body;\n"
            f"proxy_temp_path {work}/proxy;\nfastcgi_temp_path {work}/fcgi;\n"
            f"uwsgi_temp_path {work}/uwsgi;\nscgi_temp_path {work}/scgi;\n"
            f"{conf}\n}}\n"
        )
        procs.append(
            subprocess.Popen(
                [_nginx_binary(), "-p", str(work), "-c", str(work / "nginx.conf"),
                 "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        )  # fmt: skip
        _wait_for_port(app_port)
        _wait_for_port(proxy_port)

        base_url = f"http://127.0.0.1:{proxy_port}"
        with urllib.request.urlopen(
            f"{base_url}/static/vendor/plotly/plotly.min.js", timeout=10
        ) as response:
            assert response.status == 200
            assert len(response.read()) > 1_000_000
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=10) as response:
            assert json.load(response)["status"] == "ok"
        # A 34 KB URL gets an answer, 414, not a closed connection.
        with pytest.raises(urllib.error.HTTPError) as too_long:
            urllib.request.urlopen(f"{base_url}/runs/?q={'x' * 34_000}", timeout=10)
        assert too_long.value.code == 414

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as plain:
            opener.open(f"{base_url}/accounts/login/", timeout=10)
        assert plain.value.code == 301
        assert plain.value.headers["Location"] == (
            f"https://127.0.0.1:{proxy_port}/accounts/login/"
        )
        behind_tls = urllib.request.Request(
            f"{base_url}/accounts/login/", headers={"X-Forwarded-Proto": "https"}
        )
        with opener.open(behind_tls, timeout=10) as response:
            assert response.status == 200

        with connect(
            f"ws://127.0.0.1:{proxy_port}/ws/backtests/",
            origin=f"http://127.0.0.1:{proxy_port}",
            open_timeout=10,
        ) as ws:
            ws.send(json.dumps({"type": "run", "strategies": "all"}))
            received = []
            while True:
                message = json.loads(ws.recv(timeout=30))
                received.append(message)
                if message["type"] in ("complete", "error", "cancelled"):
                    break
        assert received[0]["type"] == "start"
        assert received[-1]["type"] == "complete", received[-1]
        assert len([m for m in received if m["type"] == "result"]) == 6
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def test_every_setting_read_from_the_environment_is_documented() -> None:
    import re

    source = (ROOT / "backtester" / "settings.py").read_text()
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BACKTEST_WORKERS"} <= names
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    missing_readme = sorted(n for n in names if f"`{n}`" not in table)
    missing_example = sorted(
        n for n in names if not re.search(rf"^#? ?{n}=", example, re.M)
    )
    assert not missing_readme, (
        f"not in the README's configuration table: {missing_readme}"
    )
    assert not missing_example, f"not in .env.example: {missing_example}"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/runs/", "/accounts/login/", "/admin/login/"])
def test_every_page_has_a_strict_content_security_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1)
        for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]


def test_templates_hold_no_inline_script_style_or_handler():
    """The policy forbids inline code: every template keeps it in static files
    (json_script filters render data blocks, which are not code; the one empty
    <style> the chart library fills carries the request's nonce)."""
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style(?![^>]*\bnonce=)[^>]*>"
        r"|\sstyle=|\son[a-z]+="
    )
    for template in (ROOT / "templates").rglob("*.html"):
        found = inline.search(template.read_text())
        assert found is None, f"{template.name}: inline {found.group(0)!r}"
