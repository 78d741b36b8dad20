"""`init`: create the migrations directory and zdmigrate's state schema; safe to repeat.

In an Alembic (or Flask-Migrate) project it creates nothing: the revisions Alembic
keeps are zdmigrate's migrations too. It says where they are, and whether the
database's Alembic history still has to be adopted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zdmigrate import db
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput
from zdmigrate.migration import load_migrations, migrations_folder
from zdmigrate.state import Store


@dataclass
class InitResult:
    migrations: Path
    created_directory: bool
    schema: str | None
    schema_version: int | None
    #: The migrations are an Alembic project's revisions (its versions/ folder).
    alembic_project: bool = False
    #: Found through the project's Alembic config, not the migrations setting: say so.
    found_by_alembic_config: bool = False
    #: The Alembic revision this database is at, when zdmigrate has yet to adopt it.
    adopt_revision: str | None = None


def init(settings: Settings, *, cwd: Path | None = None) -> InitResult:
    """Create the migrations directory and zdmigrate's state schema. Safe to repeat."""
    folder = migrations_folder(settings.migrations)
    found_by_config = False
    if not folder.exists():
        alembic_versions = _alembic_versions(cwd or Path.cwd())
        if alembic_versions is not None:
            folder, found_by_config = alembic_versions, True
    created = False
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a directory")
    if not folder.exists():
        folder.mkdir(parents=True)
        created = True
    alembic_project = (folder.parent / "env.py").is_file()
    version = None
    adopt_revision = None
    if settings.database_url:
        from zdmigrate.engine.adoption import alembic_revision, not_adopted

        migrations = load_migrations(folder) if alembic_project else []
        with db.connect(settings, application_name="zdmigrate init") as conn:
            version = Store(conn, settings.state_schema).ensure_schema()
            if alembic_project and not_adopted(conn, settings.state_schema, migrations):
                adopt_revision = alembic_revision(conn)
    return InitResult(folder, created, settings.state_schema if version else None, version,
                      alembic_project, found_by_config, adopt_revision)


def _alembic_versions(cwd: Path) -> Path | None:
    """The versions folder of the Alembic project configured in `cwd`, if there is one."""
    from zdmigrate._alembic_layout import layout_at

    try:
        layout = layout_at(cwd)
    except BadInput:
        return None
    if layout is None or layout.script_location is None or not layout.versions:
        return None
    return layout.versions[0]
