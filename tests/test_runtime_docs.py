"""docs/runtime.md's example app really runs: three deploys through a rename, real engine."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.util import setup_testing_defaults

import psycopg
import pytest

from tests.test_runtime import wait_until
from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.errors import PhaseRefused

DOC = Path(__file__).resolve().parents[1] / "docs" / "runtime.md"
M = "0002_rename_users_name"
CREATE_USERS = '''
revision = "0001_create_users"
down_revision = None

def expand(ctx):
    ctx.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
'''


def doc_files() -> dict[str, str]:
    """The code blocks of the doc that follow a ``<!-- file: NAME -->`` marker."""
    pattern = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.S)
    return dict(pattern.findall(DOC.read_text()))


def load(path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import one app version, as if deployed on a host of its own (its own instance id)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(socket, "gethostname", lambda: f"web-{path.stem}")
    spec = importlib.util.spec_from_file_location(f"doc_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def request(app: Any, method: str, path: str, body: str = "") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "CONTENT_LENGTH": str(len(body)),
                               "wsgi.input": io.BytesIO(body.encode())}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    chunks = app(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"]
    return json.loads(b"".join(chunks))


def undeploy(version: ModuleType) -> None:
    version.runtime.stop()
    version.engine.dispose()


def test_doc_has_the_migration_and_three_versions():
    assert set(doc_files()) == {
        "0002_rename_users_name.py", "shop_1_4.py", "shop_1_5.py", "shop_2_0.py"}


def test_the_rename_in_three_deploys(tmp_path, db_url, dsn, monkeypatch):
    files = doc_files()
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_create_users.py").write_text(CREATE_USERS)
    (migrations / "0002_rename_users_name.py").write_text(files["0002_rename_users_name.py"])
    for name in ("shop_1_4.py", "shop_1_5.py", "shop_2_0.py"):
        (tmp_path / name).write_text(files[name])
    settings = Settings(database_url=db_url, migrations=migrations)
    app_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine.init(settings)
    engine.advance(settings, "0001_create_users", to="contract")

    # deploy 1: 1.4 with heartbeats
    v14 = load(tmp_path / "shop_1_4.py", app_url, monkeypatch)
    ann = request(v14.app, "POST", "/users", "name=Ann")["id"]
    assert request(v14.app, "GET", f"/users/{ann}") == {"name": "Ann"}
    engine.advance(settings, M, to="expand")
    with pytest.raises(PhaseRefused) as refused:  # 1.4 does not write both shapes
        engine.advance(settings, M, to="backfill")
    assert "1.4" in str(refused.value)

    # deploy 2: 1.5 writes both shapes; 1.4 goes away
    v15 = load(tmp_path / "shop_1_5.py", app_url, monkeypatch)
    bob = request(v15.app, "POST", "/users", "name=Bob")["id"]
    undeploy(v14)
    engine.advance(settings, M, to="switch-read")
    assert wait_until(lambda: v15.rename.read_column("name") == "full_name", timeout=2.0)
    assert request(v15.app, "GET", f"/users/{ann}") == {"name": "Ann"}  # backfilled
    assert request(v15.app, "GET", f"/users/{bob}") == {"name": "Bob"}  # dual-written

    # deploy 3: 2.0 uses only full_name; 1.5 goes away; contract drops name
    v20 = load(tmp_path / "shop_2_0.py", app_url, monkeypatch)
    cy = request(v20.app, "POST", "/users", "name=Cy")["id"]
    assert request(v15.app, "GET", f"/users/{cy}") == {"name": "Cy"}
    with pytest.raises(PhaseRefused):  # 1.5 still live
        engine.advance(settings, M, to="contract")
    undeploy(v15)
    engine.advance(settings, M, to="contract")
    assert [request(v20.app, "GET", f"/users/{i}")["name"] for i in (ann, bob, cy)] == [
        "Ann", "Bob", "Cy"]
    with psycopg.connect(dsn) as conn:
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
            "ORDER BY ordinal_position")]
    assert columns == ["id", "full_name"]
    undeploy(v20)
    for name in ("doc_shop_1_4", "doc_shop_1_5", "doc_shop_2_0"):
        sys.modules.pop(name, None)
