from django.db import migrations

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable (% on % refused)', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_journalentry_append_only
    BEFORE UPDATE OR DELETE ON transactions_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_posting_append_only
    BEFORE UPDATE OR DELETE ON transactions_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS ledger_journalentry_append_only ON transactions_journalentry;
DROP TRIGGER IF EXISTS ledger_posting_append_only ON transactions_posting;
DROP FUNCTION IF EXISTS ledger_append_only();
"""


def append_only_on(apps, schema_editor):
    # On PostgreSQL the database itself refuses UPDATE and DELETE of journal
    # entries and postings, behind the models' own refusal: a correction is
    # always a new entry. (TRUNCATE, a superuser's tool, is not covered; the
    # integrity check and the audit chain catch what it would do.)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def append_only_off(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial")]

    operations = [migrations.RunPython(append_only_on, append_only_off)]
