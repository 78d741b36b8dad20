"""Fast tests of the SQL the pgroll-coverage operations emit per phase and per rollback, no database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.test_ops_sql import plan
from zdmigrate import ops
from zdmigrate.errors import OperationInvalid

T = '"public"."users"'


def test_drop_constraint_waits_for_contract() -> None:
    assert plan(ops.DropConstraint("shop.posts", "posts_title_length")) == {
        "contract": ['ALTER TABLE "shop"."posts" DROP CONSTRAINT IF EXISTS "posts_title_length"']}


def test_rename_constraint_waits_for_contract() -> None:
    assert plan(ops.RenameConstraint("users", "users_email_key", "Users Email")) == {
        "contract": [f'ALTER TABLE {T} RENAME CONSTRAINT "users_email_key" TO "Users Email"']}


def test_set_comment_saves_the_old_comment_and_restores_it() -> None:
    got = plan(ops.SetComment("users", "it's the name", column="Name"))
    memo = '"public"."zdm_0007_test_comment_Name_memo"'
    assert f"CREATE FUNCTION {memo}() RETURNS jsonb" in got["expand"][0]
    assert "col_description(a.attrelid, a.attnum)" in got["expand"][0]
    assert got["expand"][1] == 'COMMENT ON COLUMN "public"."users"."Name" IS \'it\'\'s the name\''
    assert (f"EXECUTE 'COMMENT ON COLUMN \"public\".\"users\".\"Name\" IS ' || "
            f"coalesce(quote_literal(({memo}() ->> 'comment')), 'NULL')") in got["rollback expand"][0]
    assert got["rollback expand"][1] == got["contract"][0] == f"DROP FUNCTION IF EXISTS {memo}()"
    table = plan(ops.SetComment("users", None))
    assert table["expand"][1] == f"COMMENT ON TABLE {T} IS NULL"
    assert "obj_description('\"public\".\"users\"'::regclass, 'pg_class')" in table["expand"][0]


def test_add_column_comment() -> None:
    got = plan(ops.AddColumn("users", "nick", "text", comment="What friends call them"))
    assert got["expand"] == [f'ALTER TABLE {T} ADD COLUMN "nick" text',
                             "COMMENT ON COLUMN \"public\".\"users\".\"nick\" IS 'What friends call them'"]


def test_set_replica_identity() -> None:
    got = plan(ops.SetReplicaIdentity("users", "FULL"))
    assert got["expand"][1] == f"ALTER TABLE {T} REPLICA IDENTITY FULL"
    assert "relreplident" in got["expand"][0] and "indisreplident" in got["expand"][0]
    assert "WHEN 'i' THEN 'USING INDEX ' || quote_ident(idx)" in got["rollback expand"][0]
    by_index = plan(ops.SetReplicaIdentity("users", index="users_email_key"))
    assert by_index["expand"][1] == f'ALTER TABLE {T} REPLICA IDENTITY USING INDEX "users_email_key"'


def test_widen_column_type_checks_the_catalog_when_it_runs() -> None:
    got = plan(ops.WidenColumnType("users", "name", sa.String(200)))
    assert "format_type(a.atttypid, a.atttypmod)" in got["expand"][0]
    guard = got["expand"][1]
    assert ("a.atttypid IN ('pg_catalog.varchar'::regtype) AND a.atttypmod >= 0 "
            "AND a.atttypmod - 4 <= 200") in guard
    assert "RAISE EXCEPTION 'public.users.name no longer widens to VARCHAR(200) in place'" in guard
    assert f'ALTER TABLE {T} ALTER COLUMN "name" TYPE VARCHAR(200);' in guard
    assert f"EXECUTE 'ALTER TABLE {T} ALTER COLUMN \"name\" TYPE ' || saved" in got["rollback expand"][0]
    numeric = plan(ops.WidenColumnType("users", "n", "numeric(14,2)"))["expand"][1]
    assert "((a.atttypmod - 4) >> 16) <= 14 AND ((a.atttypmod - 4) & 65535) = 2" in numeric


def test_create_index_options() -> None:
    got = plan(ops.CreateIndex(
        "items_idx", "items", ["sku", "made"], unique=True, nulls_not_distinct=True,
        opclass={"sku": "text_pattern_ops"}, order={"made": "desc nulls last"}, collate={"sku": "C"},
        with_={"fillfactor": 70, "deduplicate_items": False}, where="sku <> ''"))
    assert got["expand"] == [
        '[autocommit] CREATE UNIQUE INDEX CONCURRENTLY "items_idx" ON "public"."items" '
        '("sku" COLLATE "C" "text_pattern_ops", "made" DESC NULLS LAST) NULLS NOT DISTINCT '
        "WITH (fillfactor = 70, deduplicate_items = off) WHERE sku <> ''"]


def test_create_index_operator_class_parameters() -> None:
    got = plan(ops.CreateIndex("docs_idx", "docs", "body", method="gist",
                               opclass={"body": "public.gist_trgm_ops(siglen = 32)"}))
    assert got["expand"] == [
        '[autocommit] CREATE INDEX CONCURRENTLY "docs_idx" ON "public"."docs" USING gist '
        '("body" "public"."gist_trgm_ops"(siglen = 32))']


def test_add_foreign_key_fix_repairs_dangling_references() -> None:
    got = plan(ops.AddForeignKey("orders", ["user_id"], "users", ["id"], fix={"user_id": "NULL"}))
    fn = '"public"."zdm_0007_test_fk_orders_user_id_fkey"'
    assert ("IF (new.user_id IS NULL OR EXISTS (SELECT 1 FROM public.users AS zdm_other "
            "WHERE zdm_other.id = new.user_id)) IS FALSE THEN\n"
            '    NEW."user_id" := (NULL);') in got["expand"][0]
    assert got["expand"][2].endswith("NOT VALID")
    # the backfill qualifies the row's columns: users may have a user_id column too
    dangling = ('("orders"."user_id" IS NULL OR EXISTS (SELECT 1 FROM "public"."users" "zdm_other" '
                'WHERE "zdm_other"."id" = "orders"."user_id")) IS FALSE')
    assert got["backfill"] == [
        f"BACKFILL public.orders SET {{'user_id': 'NULL'}} WHERE {dangling} VERIFY {dangling}"]
    assert got["contract"][1] == f"DROP FUNCTION IF EXISTS {fn}()"
    assert got["rollback expand"][-1] == f"DROP FUNCTION IF EXISTS {fn}()"


def test_add_unique_fix_builds_the_index_after_backfill() -> None:
    got = plan(ops.AddUnique("users", ["email"], fix={"email": "email || '+' || id"}))
    lookup = '"zdm_0007_test_unique_users_email_key_lookup"'
    assert got["expand"][0] == (
        f'[autocommit] CREATE INDEX CONCURRENTLY {lookup} ON {T} ("email")')
    assert ("IF TG_OP = 'INSERT' OR (NEW.\"email\") IS DISTINCT FROM (OLD.\"email\") THEN\n"
            f'    IF EXISTS (SELECT 1 FROM {T} zdm_other WHERE "zdm_other"."email" = NEW."email")'
            ) in got["expand"][1]
    assert got["backfill"][0].endswith(
        'VERIFY EXISTS (SELECT 1 FROM "public"."users" "zdm_other" WHERE '
        '"zdm_other"."email" = "users"."email" AND "zdm_other"."ctid" < "users"."ctid")')
    unique = f'[autocommit] CREATE UNIQUE INDEX CONCURRENTLY "users_email_key" ON {T} ("email")'
    assert got["switch-read"] == [unique]
    assert got["rollback switch-read"] == [
        '[autocommit] DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_key"']
    assert got["contract"][0].endswith('UNIQUE USING INDEX "users_email_key"')
    assert got["contract"][-1] == f'[autocommit] DROP INDEX CONCURRENTLY IF EXISTS "public".{lookup}'


def test_drop_not_null_with_down_keeps_not_null_until_contract() -> None:
    got = plan(ops.DropNotNull("users", "phone", down="'unknown'"))
    assert 'IF NEW."phone" IS NULL THEN\n    NEW."phone" := (\'unknown\');' in got["expand"][0]
    assert got["contract"][0] == f'ALTER TABLE {T} ALTER COLUMN "phone" DROP NOT NULL'
    assert got["contract"][1].startswith("DROP TRIGGER IF EXISTS")
    assert [s.split(" ")[0] for s in got["rollback expand"]] == ["DROP", "DROP"]


def test_change_column_type_keeping_the_name_swaps_in_one_transaction() -> None:
    got = plan(ops.ChangeColumnType("events", "hits", "bigint", up="hits::bigint"))
    expand = "\n".join(got["expand"])
    assert 'ALTER TABLE "public"."events" ADD COLUMN "zdm_new_hits" bigint' in expand
    assert 'NEW."zdm_new_hits" := (CAST(new.hits AS bigint));\n  RETURN NEW;' in expand
    assert got["backfill"] == [
        "BACKFILL public.events SET {'zdm_new_hits': 'hits::bigint'} "
        'WHERE "zdm_new_hits" IS DISTINCT FROM (hits::bigint) '
        'VERIFY "zdm_new_hits" IS DISTINCT FROM (hits::bigint)']
    swap = ('DROP TRIGGER IF EXISTS "zdm_0007_test_retype_hits" ON "public"."events"; '
            'DROP FUNCTION IF EXISTS "public"."zdm_0007_test_retype_hits"(); '
            'ALTER TABLE "public"."events" DROP COLUMN "hits"; '
            'ALTER TABLE "public"."events" RENAME COLUMN "zdm_new_hits" TO "hits"')
    contract = got["contract"]
    assert swap in contract
    # nothing between the trigger's drop and the swap: old writes are never lost
    assert not any(s.startswith("DROP TRIGGER") for s in contract if s != swap)
    assert not any("DROP NOT NULL" in s for s in contract)


def test_new_operations_are_registered_and_exported() -> None:
    for name in ("drop_constraint", "rename_constraint", "set_comment", "set_replica_identity",
                 "widen_column_type"):
        assert ops.Operation.registry[name].__name__ in ops.__all__


@pytest.mark.parametrize("make, message", [
    (lambda: ops.WidenColumnType("t", "c", "bigint"), "use ChangeColumnType"),
    (lambda: ops.WidenColumnType("t", "c", "varchar(10)[]"), "use ChangeColumnType"),
    (lambda: ops.WidenColumnType("t", "c", "varchar("), "is not a type name"),
    (lambda: ops.SetReplicaIdentity("t", "sometimes"), "is not one of default, full, nothing"),
    (lambda: ops.SetReplicaIdentity("t", "full", index="i"), "not both"),
    (lambda: ops.RenameConstraint("t", "a", "a"), "already called"),
    (lambda: ops.DropConstraint("t", ""), "non-empty"),
    (lambda: ops.SetComment("t", 5), "comment must be text or None"),  # type: ignore[arg-type]
    (lambda: ops.CreateIndex("i", "t", ["a"], opclass={"b": "x"}), "not an indexed column"),
    (lambda: ops.CreateIndex("i", "t", ["a"], order={"a": "sideways"}), "is not ASC or DESC"),
    (lambda: ops.CreateIndex("i", "t", ["a"], opclass={"a": "x(n=1); DROP TABLE t"}),
     "CreateIndex i: operator class"),
    (lambda: ops.CreateIndex("i", "t", ["a"], opclass={"a": "x(n='1')"}), "is not name=number"),
    (lambda: ops.CreateIndex("i", "t", ["a"], with_={"fill factor": 1}), "storage parameter"),
    (lambda: ops.CreateIndex("i", "t", ["a"], nulls_not_distinct=True), "needs unique=True"),
    (lambda: ops.AddForeignKey("t", "a", "u", "id", fix={}), "fix must map column names"),
    (lambda: ops.AddUnique("t", "a", fix={"a": "lower("}), "not a valid SQL expression"),
    (lambda: ops.ChangeColumnType("t", "a", "int", new_name="b", up="a"), "`down` must convert"),
])
def test_bad_arguments_are_rejected_with_exit_2(make: object, message: str) -> None:
    with pytest.raises(OperationInvalid, match=message) as info:
        make()  # type: ignore[operator]
    assert info.value.exit_code == 2


def test_plan_shows_the_new_operations_of_the_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import EXAMPLE
    from zdmigrate import cli

    monkeypatch.delenv("ZDMIGRATE_DATABASE_URL", raising=False)
    code = cli.run(["--migrations", str(EXAMPLE), "plan", "0021_catalog_metadata"])
    out = capsys.readouterr().out
    assert code == 0
    assert "COMMENT ON TABLE \"public\".\"products\" IS 'What the shop sells';" in out
    assert 'ALTER TABLE "public"."products" ALTER COLUMN "price" TYPE numeric(14,2);' in out
    assert '("sku" "text_pattern_ops") WITH (fillfactor = 90);' in out
    assert 'ALTER TABLE "public"."orders" REPLICA IDENTITY FULL;' in out
    code = cli.run(["--migrations", str(EXAMPLE), "plan", "0022_order_items_cascade"])
    out = capsys.readouterr().out
    assert code == 0
    contract = out.split("-- contract:", 1)[1]
    assert 'DROP CONSTRAINT IF EXISTS "order_items_order_id_fkey";' in contract
    assert 'RENAME CONSTRAINT "products_sku_key" TO "products_sku_unique";' in contract
