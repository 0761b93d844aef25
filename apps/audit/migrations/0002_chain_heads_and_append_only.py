from django.db import migrations

SHARDS = 8  # apps.audit.models.AUDIT_CHAIN_SHARDS at the time of writing

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_record_append_only
    BEFORE UPDATE OR DELETE ON audit_auditrecord
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS audit_record_append_only ON audit_auditrecord;
DROP FUNCTION IF EXISTS audit_append_only();
"""


def create_heads(apps, schema_editor):
    head = apps.get_model("audit", "AuditChainHead")
    for shard in range(SHARDS):
        head.objects.get_or_create(shard=shard)


def append_only_on(apps, schema_editor):
    # On PostgreSQL the database itself refuses UPDATE and DELETE of audit
    # records: a second layer behind the model, against a stray query. An
    # attacker with superuser rights can still drop it; the hash chain is
    # what catches that.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def append_only_off(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(create_heads, migrations.RunPython.noop),
        migrations.RunPython(append_only_on, append_only_off),
    ]
