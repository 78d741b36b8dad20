"""docs/operations.md: every operation has an entry, and the pgroll mapping lists every
pgroll operation kind with an example that builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ExcludeConstraint

from zdmigrate import ops

DOC = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
MAPPING = DOC.split("## pgroll operations, one by one", 1)[1].split("\n## ", 1)[0]
ROWS = [line for line in MAPPING.splitlines() if line.startswith("| `")]

# pgroll's operation kinds (pkg/migrations/op_*.go) and alter_column's sub-operations
PGROLL_KINDS = [
    "create_table", "add_column", "drop_column", "rename_column", "alter_column` `type",
    "alter_column` `nullable: false", "alter_column` `nullable: true", "alter_column` `default",
    "alter_column` `check", "alter_column` `unique", "alter_column` `references",
    "alter_column` `comment", "create_constraint` `check", "create_constraint` `unique",
    "create_constraint` `foreign_key", "create_constraint` `primary_key", "drop_constraint",
    "drop_multicolumn_constraint", "rename_constraint", "create_index", "drop_index",
    "drop_table", "rename_table", "set_replica_identity", "sql",
]


def test_every_operation_has_an_entry() -> None:
    headings = {name for line in DOC.splitlines() if line.startswith("#")
                for name in re.findall(r"(\w+)\(", line)}
    missing = set(ops.__all__) - {"Operation", "Requirement"} - headings
    assert missing == set()


@pytest.mark.parametrize("kind", PGROLL_KINDS)
def test_every_pgroll_kind_is_mapped(kind: str) -> None:
    assert any(row.startswith(f"| `{kind}") for row in ROWS), kind


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.split("|")[1].strip()[:40])
def test_every_mapping_example_builds(row: str) -> None:
    example = row.rstrip(" |").rsplit("| `", 1)[1].rstrip("`")
    op = eval(example, {"ops": ops, "sa": sa, "ExcludeConstraint": ExcludeConstraint})
    assert isinstance(op, ops.Operation)
    named = row.split("|")[2]
    assert type(op).__name__ in named
