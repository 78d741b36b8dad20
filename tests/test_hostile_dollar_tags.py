"""Names holding ``$zdm$`` (and ``$zdm1$``) never end a generated dollar quote early (issue 14 item 15).

Every operation picks a tag absent from the body it quotes (`_names.do_block`,
`_names.dollar_quoted`), so what an operation returns is valid SQL as it is: no
pass over the text afterwards. Checked without a database (every step, rollback
step and requirement of every operation that writes a dollar-quoted body parses,
and each quoted body ends where it should), then on PostgreSQL (the whole life
of those operations, rollback included, on a table and columns with such names).
"""

from __future__ import annotations

from pathlib import Path

import pglast
import psycopg
import pytest

from tests.helpers import declare_deployed, settings_for, write_migration
from zdmigrate import engine, ops
from zdmigrate.ops.base import Operation
from zdmigrate.phases import Phase
from zdmigrate.steps import GeneratedSQLStep, SQLStep

T = "t$zdm$x"  # the table
A, A2 = "a$zdm$b", "a$zdm1$b"  # a column and its new name
N = "n$zdm$"  # an int column
V = "v$zdm1$"  # a varchar(10) column
C = "c$zdm$zdm1$"  # a column added
K = "k$zdm$"  # a constraint

OPERATIONS: list[Operation] = [
    ops.RenameColumn(T, A, A2),
    ops.RenameColumn(T, A, A2, mode="view"),
    ops.ChangeColumnType(T, N, "bigint", up=f'"{N}"::bigint'),
    ops.ChangeColumnType(T, N, "text", new_name=A2, up=f'"{N}"::text', down=f'"{A2}"::int'),
    ops.WidenColumnType(T, V, "varchar(20)"),
    ops.AddColumn(T, C, "int", nullable=False, up=f'"{N}" + 1'),
    ops.SetNotNull(T, N, fill="0"),
    ops.DropNotNull(T, N, down="0"),
    ops.SetDefault(T, N, "7"),
    ops.SetComment(T, "$zdm$ note $zdm1$", column=N),
    ops.SetReplicaIdentity(T, "full"),
    ops.AddCheck(T, K, f'"{N}" >= 0', fix={N: "0"}),
    ops.AddForeignKey(T, [N], "r$zdm$", ["id"], name=K, fix={N: "NULL"}),
    ops.AddUnique(T, [N], name=K, fix={N: f'"{N}" + 1000'}),
    ops.DropColumn(T, V),
    ops.DropColumn(T, V, down="'x'"),
    ops.RenameTable(T, "u$zdm$", mode="view"),
]
MIG = "0001_dollar"


def _statements(op: Operation) -> list[str]:
    out: list[str] = []
    for phase in Phase:
        if phase is Phase.PENDING:
            continue
        for step in [*op.steps(phase, MIG), *op.rollback_steps(phase, MIG)]:
            if isinstance(step, SQLStep):
                out.append(step.sql)
            elif isinstance(step, GeneratedSQLStep):
                out.append(step.query)
    out += [r.sql for r in op.requirements() if not r.params]  # with params: catalog lookups
    out += [r.sql for r in op.contract_requirements(MIG)]
    return out


def _quoted_bodies(node: object) -> list[str]:
    """The code of each DO block and the body of each function in a parse tree."""
    found: list[str] = []
    if isinstance(node, pglast.ast.DoStmt):
        found += [str(a.arg.sval) for a in node.args if a.defname == "as"]
    elif isinstance(node, pglast.ast.CreateFunctionStmt):
        for option in node.options or ():
            if option.defname == "as":
                found += [str(item.sval) for item in option.arg]
    return found


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.name}:{op.describe()}")
def test_every_statement_an_operation_returns_parses_with_each_body_whole(op: Operation) -> None:
    bodies = 0
    for text in _statements(op):
        parsed = pglast.parse_sql(text)  # raises on a quote that ended early
        for raw in parsed:
            for body in _quoted_bodies(raw.stmt):
                bodies += 1
                # a quote that ended early and found another end later would leave a
                # body cut short: each generated body ends with END and a newline
                assert body.rstrip().endswith("END"), (text, body)
    assert bodies > 0  # the operation does write dollar-quoted bodies


def test_a_body_holding_every_candidate_tag_gets_a_new_one() -> None:
    from zdmigrate.ops._names import do_block

    text = do_block("\nBEGIN PERFORM '$zdm$ $zdm1$ $zdm2$'; END\n")
    assert text.startswith("DO $zdm3$") and text.endswith("$zdm3$")
    assert pglast.parse_sql(text)


def _migration(folder: Path, name: str, down: str | None, operations: str) -> None:
    write_migration(folder, name, f'''
        from zdmigrate import ops
        revision = "{name}"
        down_revision = {down!r}
        compat = {{"shop": {{"old_unused_from": "2.0"}}}}
        operations = {operations}
    ''')


def test_the_operations_run_their_whole_life_on_postgresql(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "r$zdm$" (id int PRIMARY KEY); INSERT INTO "r$zdm$" VALUES (1), (2);'
            f'CREATE TABLE "{T}" (id int PRIMARY KEY, "{A}" text CONSTRAINT "{K}1" CHECK ("{A}" <> \'\'),'
            f' "{N}" int, "{V}" varchar(10), "w$zdm$" int);'
            f'CREATE INDEX "i$zdm$" ON "{T}" ("{A}");'
            f'INSERT INTO "{T}" SELECT g, \'a\' || g, g % 2 + 1, \'v\' || g, g FROM generate_series(1, 20) g')
    folder = tmp_path / "m"
    folder.mkdir()
    q = repr
    _migration(folder, "0001_copy", None, f"[ops.RenameColumn({q(T)}, {q(A)}, {q(A2)})]")
    _migration(folder, "0002_types", "0001_copy",
               f"[ops.ChangeColumnType({q(T)}, {q(N)}, 'bigint', up={q(chr(34) + N + chr(34) + '::bigint')}),"
               f" ops.WidenColumnType({q(T)}, {q(V)}, 'varchar(20)')]")
    _migration(folder, "0003_more", "0002_types",
               f"[ops.AddColumn({q(T)}, {q(C)}, 'int', nullable=False, up={q(chr(34) + N + chr(34) + ' + 1')}),"
               f" ops.SetDefault({q(T)}, {q(N)}, '7'),"
               f" ops.SetComment({q(T)}, '$zdm$ note', column={q(N)}),"
               f" ops.SetNotNull({q(T)}, {q(N)}, fill='0'),"
               f" ops.AddForeignKey({q(T)}, [{q(N)}], 'r$zdm$', ['id'], name={q(K)}, fix={{{q(N)}: 'NULL'}}),"
               f" ops.SetReplicaIdentity({q(T)}, 'full')]")
    _migration(folder, "0004_view", "0003_more",
               f"[ops.RenameColumn({q(T)}, 'w$zdm$', 'w$zdm1$', mode='view'),"
               f" ops.DropColumn({q(T)}, {q(V)})]")
    settings = settings_for(db_url, folder)
    declare_deployed(settings)
    for name in ("0001_copy", "0002_types", "0003_more", "0004_view"):
        engine.advance(settings, name, to="switch-read")
        engine.rollback(settings, name, to="pending")  # every rollback body runs too
        engine.advance(settings, name, to="contract")
    with psycopg.connect(dsn) as conn:
        columns = {r[0]: r[1] for r in conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            f" WHERE attrelid = '\"{T}\"'::regclass AND attnum > 0 AND NOT attisdropped")}
        assert columns == {"id": "integer", A2: "text", N: "bigint", C: "integer",
                           "w$zdm1$": "integer"}
        assert conn.execute(f'SELECT count(*) FROM "{T}" WHERE "{A2}" = \'a\' || id').fetchone() == (20,)
        assert conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND conname IN (%s, %s)",
            [f'"{T}"', f"{K}1", K]).fetchone() == (2,)
        assert conn.execute(
            "SELECT col_description(attrelid, attnum) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attname = %s", [f'"{T}"', N]).fetchone() == ("$zdm$ note",)
