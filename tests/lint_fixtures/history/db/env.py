"""env.py of the lint fixture project: offline mode as `alembic upgrade --sql` runs it."""

import zd_fixture_plugin  # noqa: F401  (registers op.rename_enum_label, as plugins do)
from alembic import context

print("env.py: configuring offline")  # must not reach lint's stdout
config = context.config


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    raise RuntimeError("the lint fixture only runs offline")
