"""Type changes: widenings are not rewrites when the old type is known."""
import sqlalchemy as sa
from alembic import op

revision = "r02"
down_revision = "r01"


def upgrade():
    op.alter_column("users", "email", existing_type=sa.VARCHAR(128), type_=sa.String(256))
    op.alter_column("users", "nick", existing_type=sa.VARCHAR(100), type_=sa.VARCHAR())
    op.alter_column("users", "bio", existing_type=sa.Text(), type_=sa.VARCHAR())
    op.alter_column("accounts", "name", type_=sa.String(200))
    op.alter_column("users", "age", existing_type=sa.Integer(), type_=sa.BigInteger())
    op.alter_column("users", "score", type_=sa.BigInteger())
