"""Failed logins lock a (user name, address) pair out, for a fixed cool-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
RIGHT = "right-pw-123"
A, B = "10.0.0.1", "10.0.0.2"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    # A fast hasher: these tests try many passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    """Set the time django-axes stamps attempts with: a list holding one datetime."""
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    monkeypatch.setattr("axes.handlers.proxy.now", lambda: now[0])
    return now


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_user("admin", password=RIGHT)


def attempt(password: str, *, address: str, username: str = "admin") -> int:
    response = Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password}
    )
    return response.status_code


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(admin_user):
    statuses = [attempt("wrong", address=A) for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks
    assert attempt(RIGHT, address=A) == 429  # (admin, A) is locked
    assert attempt(RIGHT, address=B) == 302  # admin from B logs in


def test_failures_under_one_name_do_not_lock_the_address_for_others(admin_user):
    get_user_model().objects.create_user("trader", password=RIGHT)
    for _ in range(5):
        attempt("wrong", address=A, username="admin")
    assert attempt(RIGHT, address=A, username="trader") == 302


def test_a_locked_pair_stays_locked_until_the_cool_off_ends(admin_user, clock):
    start = clock[0]
    for _ in range(5):
        attempt("wrong", address=A)
    clock[0] = start + timedelta(minutes=14, seconds=59)
    # Tries while locked (right password or wrong) neither get in nor restart the
    # cool-off, which runs from the failure that locked.
    assert attempt(RIGHT, address=A) == 429
    assert attempt("wrong", address=A) == 429
    clock[0] = start + timedelta(minutes=15, seconds=1)
    assert attempt(RIGHT, address=A) == 302
