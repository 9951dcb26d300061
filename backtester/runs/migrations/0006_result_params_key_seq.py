"""A result is identified by (run, coin, strategy, params), and numbered."""

import hashlib
import json

from django.db import migrations, models


def fill_params_keys(apps, schema_editor):
    # The rule of models.params_key, frozen here as migrations must be.
    Result = apps.get_model("backtester", "BacktestResult")
    for result in Result.objects.only("pk", "params").iterator():
        text = json.dumps(result.params or {}, sort_keys=True, separators=(",", ":"))
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        Result.objects.filter(pk=result.pk).update(params_key=key)


class Migration(migrations.Migration):

    dependencies = [
        ("backtester", "0005_run_risk"),
    ]

    operations = [
        migrations.AddField(
            model_name="backtestresult",
            name="params_key",
            field=models.CharField(default="", editable=False, max_length=32),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="backtestresult",
            name="seq",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill_params_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="backtestresult",
            name="result_run_symbol_uniq",
        ),
        migrations.AddConstraint(
            model_name="backtestresult",
            constraint=models.UniqueConstraint(
                fields=("run", "symbol", "strategy", "params_key"),
                name="result_run_symbol_params_uniq",
            ),
        ),
        migrations.AddConstraint(
            model_name="backtestresult",
            constraint=models.UniqueConstraint(
                fields=("run", "seq"), name="result_run_seq_uniq"
            ),
        ),
    ]
