"""A revision that imports a package this environment does not have."""
import zd_not_installed_anywhere
from alembic import op

revision = "r07"
down_revision = "r06"


def upgrade():
    op.execute(zd_not_installed_anywhere.SQL)
