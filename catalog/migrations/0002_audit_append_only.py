"""Make the audit log append-only in the database itself, not just in the ORM.

UPDATE of any column but actor_id (nulled when a user is deleted) and DELETE are refused.
"""

from django.db import migrations

COLUMNS = "created_at, actor_name, action, object_type, object_id, object_repr, before, after, request_id, job_run_id"

POSTGRES = f"""
CREATE OR REPLACE FUNCTION catalog_auditevent_immutable() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER catalog_auditevent_no_update BEFORE UPDATE OF {COLUMNS} ON catalog_auditevent
  FOR EACH ROW EXECUTE FUNCTION catalog_auditevent_immutable();
CREATE TRIGGER catalog_auditevent_no_delete BEFORE DELETE ON catalog_auditevent
  FOR EACH ROW EXECUTE FUNCTION catalog_auditevent_immutable();
"""

SQLITE = [
    f"""CREATE TRIGGER catalog_auditevent_no_update BEFORE UPDATE OF {COLUMNS} ON catalog_auditevent
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
    """CREATE TRIGGER catalog_auditevent_no_delete BEFORE DELETE ON catalog_auditevent
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
]


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute("DROP TRIGGER IF EXISTS catalog_auditevent_no_update ON catalog_auditevent"
                          if schema_editor.connection.vendor == "postgresql"
                          else "DROP TRIGGER IF EXISTS catalog_auditevent_no_update")
    schema_editor.execute("DROP TRIGGER IF EXISTS catalog_auditevent_no_delete ON catalog_auditevent"
                          if schema_editor.connection.vendor == "postgresql"
                          else "DROP TRIGGER IF EXISTS catalog_auditevent_no_delete")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
