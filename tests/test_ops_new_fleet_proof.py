"""Contract needs fleet proof exactly when it removes something old app versions rely on.

Judged as `fleet.checks.destructive_contract_statements` judges a migration:
the linter's destructive statements plus every step marked REMOVES_OLD_DEPENDENCY.
"""

from __future__ import annotations

import pytest

from zdmigrate import ops
from zdmigrate.lint import destructive_statements
from zdmigrate.phases import Phase
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep


def needs_proof(op: ops.Operation) -> bool:
    steps = op.steps(Phase.CONTRACT, "0007_test")
    marked = [s for s in steps if isinstance(s, SQLStep) and s.role == REMOVES_OLD_DEPENDENCY]
    unmarked = [s for s in steps if not (isinstance(s, SQLStep) and s.role is not None)]
    return bool(marked or destructive_statements(unmarked))


@pytest.mark.parametrize("op", [
    ops.DropConstraint("posts", "posts_title_length"),
    ops.RenameConstraint("posts", "posts_slug_key", "posts_slug_unique"),  # ON CONFLICT ON CONSTRAINT
    ops.DropNotNull("people", "phone", down="'unknown'"),                  # old readers' trigger
    ops.AddForeignKey("orders", "user_id", "users", "id", fix={"user_id": "NULL"}),
    ops.AddUnique("users", "email", fix={"email": "email || id"}),
    ops.ChangeColumnType("metrics", "hits", "bigint", up="hits::bigint"),
], ids=lambda op: op.describe())
def test_contract_that_removes_what_old_versions_use_needs_proof(op: ops.Operation) -> None:
    assert needs_proof(op)


@pytest.mark.parametrize("op", [
    ops.SetComment("people", "x"),
    ops.SetReplicaIdentity("people", "full"),
    ops.WidenColumnType("people", "name", "varchar(100)"),
    ops.AddColumn("people", "nick", "text", comment="x"),
    ops.CreateIndex("i", "people", "name", with_={"fillfactor": 70}),
], ids=lambda op: op.describe())
def test_contract_of_metadata_and_widening_needs_no_proof(op: ops.Operation) -> None:
    assert not needs_proof(op)
