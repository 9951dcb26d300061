"""Failed logins are throttled per (user name, client address); see test_lockout."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    # A fast hasher: these tests try many passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def trader():
    return get_user_model().objects.create_user("trader", password="right-pw-123")


def attempt(password: str, *, username: str = "trader", address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password}
    )


def test_the_right_password_is_refused_after_too_many_failures(trader):
    for _ in range(2):
        assert attempt("wrong").status_code == 200  # the form again
    locked = attempt("wrong")  # the third failure locks
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "after 3 failed attempts" in locked.content.decode()
    assert "Try again in 15 minutes" in locked.content.decode()
    # 200 wrong passwords then the right one: still locked out.
    assert attempt("right-pw-123").status_code == 429


def test_a_successful_login_resets_the_count(trader):
    for _ in range(2):
        attempt("wrong")
    assert attempt("right-pw-123").status_code == 302  # logged in
    for _ in range(2):  # counting starts again from zero
        assert attempt("wrong").status_code == 200
    assert attempt("right-pw-123").status_code == 302


def test_the_client_address_behind_trusted_proxies(settings, rf):
    from backtester.auth import client_ip

    request = rf.get("/", REMOTE_ADDR="172.18.0.5",
                     HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")  # fmt: skip
    assert client_ip(request) == "172.18.0.5"  # no trusted proxy: the peer
    settings.TRUSTED_PROXIES = 1  # nginx appended the client it saw
    assert client_ip(request) == "203.0.113.7"  # the spoofable first entry ignored
    settings.TRUSTED_PROXIES = 3  # a header shorter than the chain: the peer
    assert client_ip(request) == "172.18.0.5"


def test_the_websocket_client_address_behind_trusted_proxies(settings):
    from backtester.auth import scope_client_ip

    scope = {"client": ["172.18.0.5", 5000],
             "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}  # fmt: skip
    assert scope_client_ip(scope) == "172.18.0.5"
    settings.TRUSTED_PROXIES = 1
    assert scope_client_ip(scope) == "203.0.113.7"
    assert scope_client_ip({"headers": []}) is None
