"""A starting server marks failed every kind of job its dead predecessor owned."""

from __future__ import annotations

import pytest
from django.apps import apps

from backtester.asgi import STALE_MARKERS
from backtester.execution.boot import jobs_mark_stale_at_boot
from backtester.runs import processes
from backtester.runs.tests.test_stale_runs import dead_owner  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not processes.HAS_PROC, reason="needs /proc"),
]


def owned_job_models() -> list:
    """Return the models of jobs a server process owns: those with an owner
    (the process) and a status."""
    return [
        model
        for model in apps.get_models()
        if model.__module__.startswith("backtester.")
        and {"owner", "status"} <= {f.name for f in model._meta.get_fields()}
        and model._meta.get_field("owner").get_internal_type() == "CharField"
    ]


# Values for fields a record cannot be stored without, by field type.
FILLERS = {"JSONField": list, "CharField": lambda: "x", "TextField": str,
           "FloatField": float, "IntegerField": int}  # fmt: skip


def required(model) -> dict:
    """Return a value for each field ``model`` needs (no default, not null)."""
    return {
        field.name: FILLERS[field.get_internal_type()]()
        for field in model._meta.concrete_fields
        if not field.null
        and not field.has_default()
        and not field.primary_key
        and not getattr(field, "auto_now_add", False)
        and field.get_internal_type() in FILLERS
    }


def test_every_kind_of_owned_job_left_running_is_failed_at_boot(dead_owner):  # noqa: F811
    models = owned_job_models()
    # Runs, sweeps, portfolio runs and portfolio sweeps at least.
    assert len(models) >= 4, models
    left = [
        model.objects.create(
            **{**required(model), "owner": dead_owner, "status": model.Status.RUNNING}
        )
        for model in models
    ]
    jobs_mark_stale_at_boot(STALE_MARKERS, attempts=1)
    for job in left:
        job.refresh_from_db()
        assert job.status == type(job).Status.FAILED, type(job).__name__
        assert "restart" in job.error
