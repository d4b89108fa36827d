"""exchange_outbox.coded, coded_for: each record's JSON text as its writer coded it

Revision ID: 0027
Revises: 0026

The writers of outbox records store each record's text in HCP_EXCHANGE_PROFILE (``coded``)
with what it was coded for (``coded_for``: the coding's key — the profile's content and
HCP_AREA_CODE — and the coding epoch), so the push's claim only reads stored text. On
PostgreSQL ``exchange_coding`` holds the epoch, one row, moved on by triggers whenever a
value a stored text was made from changes (a department's credit code, an item's code, a
rating's coded columns, a deleted rating, department or item); a record whose ``coded_for``
is not the current one is coded again when it is claimed.
"""
from alembic import op
import sqlalchemy as sa

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

_RATING_COLUMNS = ("project_no", "channel", "level", "assess_number", "rated_at", "reasons::text", "comment",
                   "rater_name_masked", "real_name", "department_id", "item_id")


def upgrade():
    op.add_column('exchange_outbox', sa.Column('coded', sa.Text(), nullable=True))
    op.add_column('exchange_outbox', sa.Column('coded_for', sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("CREATE TABLE exchange_coding (epoch bigint NOT NULL)")
    op.execute("INSERT INTO exchange_coding (epoch) VALUES (1)")
    op.execute("CREATE FUNCTION exchange_coding_moved() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN UPDATE exchange_coding SET epoch = epoch + 1; RETURN NULL; END $$")
    old = ", ".join(f"OLD.{c}" for c in _RATING_COLUMNS)
    new = ", ".join(f"NEW.{c}" for c in _RATING_COLUMNS)
    for name, table, when in (
            ("departments_credit_code", "departments", "UPDATE OF credit_code ON departments FOR EACH ROW "
             "WHEN (OLD.credit_code IS DISTINCT FROM NEW.credit_code)"),
            ("service_items_code", "service_items", "UPDATE OF code ON service_items FOR EACH ROW "
             "WHEN (OLD.code IS DISTINCT FROM NEW.code)"),
            ("ratings_coded", "ratings", f"UPDATE ON ratings FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))"),
            ("ratings_deleted", "ratings", "DELETE ON ratings FOR EACH STATEMENT"),
            ("departments_deleted", "departments", "DELETE ON departments FOR EACH STATEMENT"),
            ("service_items_deleted", "service_items", "DELETE ON service_items FOR EACH STATEMENT")):
        op.execute(f"CREATE TRIGGER exchange_coding_{name} AFTER {when} EXECUTE FUNCTION exchange_coding_moved()")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for name, table in (("departments_credit_code", "departments"), ("service_items_code", "service_items"),
                            ("ratings_coded", "ratings"), ("ratings_deleted", "ratings"),
                            ("departments_deleted", "departments"), ("service_items_deleted", "service_items")):
            op.execute(f"DROP TRIGGER exchange_coding_{name} ON {table}")
        op.execute("DROP FUNCTION exchange_coding_moved()")
        op.execute("DROP TABLE exchange_coding")
    with op.batch_alter_table('exchange_outbox') as batch:
        batch.drop_column('coded_for')
        batch.drop_column('coded')
