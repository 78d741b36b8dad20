"""`init`: create the migrations directory and zdmigrate's state schema; safe to repeat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zdmigrate import db, state
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput


@dataclass
class InitResult:
    migrations: Path
    created_directory: bool
    schema: str | None
    schema_version: int | None


def init(settings: Settings) -> InitResult:
    """Create the migrations directory and zdmigrate's state schema. Safe to repeat."""
    folder = settings.migrations
    created = False
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a directory")
    if not folder.exists():
        folder.mkdir(parents=True)
        created = True
    version = None
    if settings.database_url:
        with db.connect(settings, application_name="zdmigrate init") as conn:
            version = state.ensure_schema(conn, settings.state_schema)
    return InitResult(folder, created, settings.state_schema if version else None, version)
