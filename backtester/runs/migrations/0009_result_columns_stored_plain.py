"""Store results' packed columns out of line without trying to compress them.

``trades`` and ``equity`` are packed float and integer arrays (fields.py) that
PostgreSQL's pglz cannot shrink: every insert tried and failed, which was most
of the time an identical rerun spent copying 288 results (about 0.13 s of 0.19
s), and a share of every live run's stores. EXTERNAL storage keeps them out of
line as before, uncompressed, as they ended up anyway. Other databases have no
such setting: nothing to do there.
"""

from django.db import migrations

COLUMNS = ("trades", "equity")


def _storage(kind: str):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name("backtester_backtestresult")
        clauses = ", ".join(
            f"ALTER COLUMN {schema_editor.quote_name(c)} SET STORAGE {kind}"
            for c in COLUMNS
        )
        schema_editor.execute(f"ALTER TABLE {table} {clauses}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("backtester", "0008_strategy_versions"),
    ]

    operations = [
        migrations.RunPython(_storage("EXTERNAL"), _storage("EXTENDED")),
    ]
