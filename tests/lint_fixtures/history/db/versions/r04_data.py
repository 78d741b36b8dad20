"""A data migration that reads query results before changing the schema."""
import sqlalchemy as sa
from alembic import op

revision = "r04"
down_revision = "r03"


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id FROM users WHERE legacy")).fetchall()
    total = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    for row in rows:
        op.execute(sa.text("UPDATE users SET legacy = false WHERE id = :id").bindparams(id=row.id))
    print(f"migrated {len(rows)} of {total} users")
    op.drop_column("users", "legacy")
