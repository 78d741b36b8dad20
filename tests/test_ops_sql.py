"""Fast tests: the exact SQL every operation emits per phase and per rollback, no database.

Like alembic's op_fixture: build the operation, render its steps, compare text.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from zdmigrate import ops
from zdmigrate.errors import OperationInvalid
from zdmigrate.ops._expressions import on_record
from zdmigrate.ops._names import generated_name
from zdmigrate.phases import WORK_PHASES, Phase
from zdmigrate.steps import BackfillStep, GeneratedSQLStep, SQLStep

MID = "0007_test"


def plan(op: ops.Operation) -> dict[str, list[str]]:
    """Every phase and rollback as text; backfills as 'BACKFILL table SET ... WHERE ... VERIFY ...'."""
    out: dict[str, list[str]] = {}
    for phase in WORK_PHASES:
        for direction, steps in (("", op.steps(phase, MID)),
                                 ("rollback ", op.rollback_steps(phase, MID))):
            if phase is Phase.CONTRACT and direction:
                continue
            texts = []
            for s in steps:
                if isinstance(s, BackfillStep):
                    texts.append(f"BACKFILL {s.schema}.{s.table} SET {dict(s.set)} "
                                 f"WHERE {s.where} VERIFY {s.verify}")
                elif isinstance(s, GeneratedSQLStep):
                    texts.append(f"GENERATED {s.description}")
                else:
                    assert isinstance(s, SQLStep)
                    texts.append(("[autocommit] " if s.autocommit else "") + s.sql)
            if texts:
                out[direction + phase.value] = texts
    return out


def test_add_column_with_up_default_and_not_null() -> None:
    op = ops.AddColumn("users", "email_lower", sa.Text, nullable=False, default="''",
                       up="lower(email)")
    got = plan(op)
    fn = '"public"."zdm_0007_test_add_email_lower"'
    assert got["expand"][0] == 'ALTER TABLE "public"."users" ADD COLUMN "email_lower" TEXT'
    assert got["expand"][1].startswith(f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql")
    assert 'NEW."email_lower" := (lower(new.email));' in got["expand"][1]
    assert got["expand"][2] == (
        'CREATE TRIGGER "zdm_0007_test_add_email_lower" BEFORE INSERT OR UPDATE ON "public"."users" '
        f"FOR EACH ROW EXECUTE FUNCTION {fn}()")
    assert got["backfill"] == [
        "BACKFILL public.users SET {'email_lower': 'lower(email)'} "
        "WHERE \"email_lower\" IS NULL AND (lower(email)) IS NOT NULL "
        "VERIFY \"email_lower\" IS NULL AND (lower(email)) IS NOT NULL"]
    nn = '"zdm_0007_test_email_lower_nn"'
    assert got["contract"] == [
        'ALTER TABLE "public"."users" ALTER COLUMN "email_lower" SET DEFAULT \'\'',
        f'ALTER TABLE "public"."users" ADD CONSTRAINT {nn} CHECK ("email_lower" IS NOT NULL) NOT VALID',
        f'ALTER TABLE "public"."users" VALIDATE CONSTRAINT {nn}',
        'ALTER TABLE "public"."users" ALTER COLUMN "email_lower" SET NOT NULL',
        f'ALTER TABLE "public"."users" DROP CONSTRAINT {nn}',
        'DROP TRIGGER IF EXISTS "zdm_0007_test_add_email_lower" ON "public"."users"',
        f"DROP FUNCTION IF EXISTS {fn}()",
    ]
    assert got["rollback expand"] == [
        'DROP TRIGGER IF EXISTS "zdm_0007_test_add_email_lower" ON "public"."users"',
        f"DROP FUNCTION IF EXISTS {fn}()",
        'ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "email_lower"',
    ]
    assert set(got) == {"expand", "backfill", "contract", "rollback expand"}


def test_add_column_plain_default_is_part_of_add_column() -> None:
    got = plan(ops.AddColumn("shop.Orders", "Is Gift", "boolean", default=False))
    assert got == {
        "expand": ['ALTER TABLE "shop"."Orders" ADD COLUMN "Is Gift" boolean DEFAULT false'],
        "rollback expand": ['ALTER TABLE "shop"."Orders" DROP COLUMN IF EXISTS "Is Gift"'],
    }


def test_rename_column_phases() -> None:
    got = plan(ops.RenameColumn("users", "name", "full_name"))
    assert got["expand"][0].startswith("DO $zdm$")
    assert ("EXECUTE 'ALTER TABLE \"public\".\"users\" ADD COLUMN \"full_name\" ' || "
            "(SELECT format_type(a.atttypid, a.atttypmod)") in got["expand"][0]
    body = got["expand"][1]
    assert "IF NEW.\"full_name\" IS NULL THEN\n      NEW.\"full_name\" := (new.name);" in body
    assert ("ELSIF NEW.\"name\" IS DISTINCT FROM OLD.\"name\" AND "
            "NEW.\"full_name\" IS NOT DISTINCT FROM OLD.\"full_name\" THEN") in body
    disagree = '"full_name" IS DISTINCT FROM ("name") AND "name" IS DISTINCT FROM ("full_name")'
    assert got["backfill"] == [
        f"BACKFILL public.users SET {{'full_name': '\"name\"'}} WHERE {disagree} VERIFY {disagree}"]
    assert "LIKE \"public\".\"users\" INCLUDING CONSTRAINTS" in got["expand"][3]
    assert "ADD CONSTRAINT %I %s NOT VALID" in got["expand"][3]
    contract = got["contract"]
    assert "dependent_objects_still_exist" in contract[0]  # the guard runs before any drop
    assert "attname = 'name' AND attnotnull" in contract[1]
    assert "VALIDATE CONSTRAINT" in contract[2] and "SET NOT NULL" in contract[3]
    assert "pg_get_serial_sequence" in contract[4]
    assert "COMMENT ON COLUMN" in contract[5] and "SET STATISTICS" in contract[5]
    assert contract[-7:] == [
        'DROP TRIGGER IF EXISTS "zdm_0007_test_rename_name" ON "public"."users"',
        'DROP FUNCTION IF EXISTS "public"."zdm_0007_test_rename_name"()',
        "GENERATED drop the foreign keys to public.users.name that were re-pointed",
        'ALTER TABLE "public"."users" DROP COLUMN "name"',
        "GENERATED give the copied indexes of public.users their original names",
        'DROP FUNCTION IF EXISTS "public"."zdm_0007_test_name_indexes"()',
        "GENERATED give the copied constraints of public.users.name their original names",
    ]
    assert got["switch-read"][0].startswith("DO $zdm$")
    assert "pg_get_indexdef" in got["switch-read"][0]
    assert got["switch-read"][1:] == [
        "GENERATED copy the indexes of public.users.name onto full_name",
        "GENERATED re-point the foreign keys to public.users.name at full_name",
        "GENERATED validate the copied constraints of public.users.name",
    ]
    assert got["rollback switch-read"] == [
        "GENERATED drop the re-pointed foreign keys to public.users.name",
        "GENERATED drop the copied indexes of public.users",
        'DROP FUNCTION IF EXISTS "public"."zdm_0007_test_name_indexes"()',
    ]
    assert got["rollback expand"][-1] == 'ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "full_name"'


def test_change_column_type_phases() -> None:
    op = ops.ChangeColumnType("orders", "total_cents", sa.Numeric(12, 2), new_name="total",
                              up="total_cents / 100.0", down="round(total * 100)::bigint")
    got = plan(op)
    assert got["expand"][0].startswith(
        "DO $zdm$\nBEGIN\n  EXECUTE 'ALTER TABLE \"public\".\"orders\" ADD COLUMN \"total\" "
        "NUMERIC(12, 2)' || coalesce((SELECT CASE WHEN a.attcollation <> t.typcollation")
    assert 'NEW."total_cents" := (CAST(round(new.total * 100) AS bigint));' in got["expand"][1]
    assert got["backfill"][0].startswith(
        "BACKFILL public.orders SET {'total': 'total_cents / 100.0'} "
        'WHERE "total" IS DISTINCT FROM (total_cents / 100.0) AND '
        '"total_cents" IS DISTINCT FROM (round(total * 100)::bigint)')
    assert "'(' || d || ')::' || 'NUMERIC(12, 2)'" in got["contract"][4]


def test_drop_column_without_down_saves_not_null_in_a_memo() -> None:
    got = plan(ops.DropColumn("users", "nickname"))
    memo = '"public"."zdm_0007_test_drop_nickname_memo"'
    assert f"CREATE FUNCTION {memo}() RETURNS jsonb" in got["expand"][0]
    assert 'ALTER TABLE "public"."users" ALTER COLUMN "nickname" DROP NOT NULL;' in got["expand"][1]
    assert got["contract"] == [f"DROP FUNCTION IF EXISTS {memo}()",
                               'ALTER TABLE "public"."users" DROP COLUMN "nickname"']
    rollback = got["rollback expand"]
    assert f"coalesce(({memo}() ->> 'not_null')::boolean, false)" in rollback[0]
    assert "VALIDATE CONSTRAINT" in rollback[1] and "SET NOT NULL" in rollback[2]
    assert rollback[3] == f"DROP FUNCTION IF EXISTS {memo}()"


def test_drop_column_with_down_fills_for_old_readers() -> None:
    got = plan(ops.DropColumn("users", "phone", down="'n/a'"))
    assert "NEW.\"phone\" := ('n/a');" in got["expand"][0]
    assert got["contract"][0] == 'ALTER TABLE "public"."users" ALTER COLUMN "phone" DROP NOT NULL'
    assert got["contract"][-1] == 'ALTER TABLE "public"."users" DROP COLUMN "phone"'


def test_set_not_null_phases() -> None:
    got = plan(ops.SetNotNull("orders", "currency", fill="'EUR'"))
    assert 'IF NEW."currency" IS NULL THEN\n    NEW."currency" := (\'EUR\');' in got["expand"][0]
    assert got["backfill"] == ["BACKFILL public.orders SET {'currency': \"'EUR'\"} "
                               'WHERE "currency" IS NULL VERIFY "currency" IS NULL']
    assert [s.split(" ", 3)[3] for s in got["contract"][:4]] == [
        'ADD CONSTRAINT "zdm_0007_test_currency_nn" CHECK ("currency" IS NOT NULL) NOT VALID',
        'VALIDATE CONSTRAINT "zdm_0007_test_currency_nn"',
        'ALTER COLUMN "currency" SET NOT NULL',
        'DROP CONSTRAINT "zdm_0007_test_currency_nn"',
    ]


def test_drop_not_null_set_default_drop_default() -> None:
    assert plan(ops.DropNotNull("users", "phone"))["expand"] == [
        'ALTER TABLE "public"."users" ALTER COLUMN "phone" DROP NOT NULL']
    assert plan(ops.DropDefault("users", "status")) == {
        "contract": ['ALTER TABLE "public"."users" ALTER COLUMN "status" DROP DEFAULT']}
    got = plan(ops.SetDefault("users", "status", "'new'"))
    assert got["expand"][1] == 'ALTER TABLE "public"."users" ALTER COLUMN "status" SET DEFAULT \'new\''
    assert "EXECUTE 'ALTER TABLE \"public\".\"users\" ALTER COLUMN \"status\" SET DEFAULT ' || saved" \
        in got["rollback expand"][0]


def test_table_operations() -> None:
    got = plan(ops.CreateTable("shop.coupons", sa.Column("code", sa.Text, primary_key=True)))
    assert got["expand"] == ["CREATE TABLE shop.coupons (\n\tcode TEXT NOT NULL, \n\tPRIMARY KEY (code)\n)"]
    assert got["rollback expand"] == ['DROP TABLE IF EXISTS "shop"."coupons"']
    assert plan(ops.DropTable("wishlists")) == {"contract": ['DROP TABLE "public"."wishlists"']}
    assert plan(ops.DropTable("wishlists", archive="archive"))["contract"] == [
        'CREATE SCHEMA IF NOT EXISTS "archive"',
        'ALTER TABLE "public"."wishlists" SET SCHEMA "archive"']
    assert plan(ops.RenameTable("carts", "baskets")) == {
        "expand": ['CREATE VIEW "public"."baskets" AS SELECT * FROM "public"."carts"'],
        "rollback expand": ['DROP VIEW IF EXISTS "public"."baskets"'],
        "contract": ['DROP VIEW "public"."baskets"; ALTER TABLE "public"."carts" RENAME TO "baskets"'],
    }


def test_index_operations_are_concurrent() -> None:
    got = plan(ops.CreateIndex("orders_user_idx", "orders", ["user_id", "Created At"], unique=True,
                               where="deleted_at IS NULL", method="btree", include=["total"]))
    assert got == {
        "expand": ['[autocommit] CREATE UNIQUE INDEX CONCURRENTLY "orders_user_idx" ON '
                   '"public"."orders" USING btree ("user_id", "Created At") INCLUDE ("total") '
                   "WHERE deleted_at IS NULL"],
        "rollback expand": ['[autocommit] DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_user_idx"'],
    }
    assert plan(ops.DropIndex("shop.old_idx")) == {
        "contract": ['[autocommit] DROP INDEX CONCURRENTLY IF EXISTS "shop"."old_idx"']}


def test_constraint_operations() -> None:
    fk = plan(ops.AddForeignKey("orders", ["user_id"], "users", ["id"], on_delete="cascade"))
    add = ('ALTER TABLE "public"."orders" ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY '
           '("user_id") REFERENCES "public"."users" ("id") ON DELETE CASCADE NOT VALID')
    drop = 'ALTER TABLE "public"."orders" DROP CONSTRAINT IF EXISTS "orders_user_id_fkey"'
    assert fk == {
        "expand": [add], "rollback expand": [drop],
        "switch-read": ['ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "orders_user_id_fkey"'],
        "rollback switch-read": [f"{drop}; {add}"],
    }
    check = plan(ops.AddCheck("products", "price_positive", "price > 0", fix={"price": "1"}))
    assert check["expand"][-1] == ('ALTER TABLE "public"."products" ADD CONSTRAINT "price_positive" '
                                   "CHECK (price > 0) NOT VALID")
    assert check["backfill"] == ["BACKFILL public.products SET {'price': '1'} "
                                 "WHERE (price > 0) IS FALSE VERIFY (price > 0) IS FALSE"]
    unique = plan(ops.AddUnique("users", ["email"]))
    assert unique == {
        "expand": ['[autocommit] CREATE UNIQUE INDEX CONCURRENTLY "users_email_key" ON '
                   '"public"."users" ("email")'],
        "rollback expand": ['[autocommit] DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email_key"'],
        "contract": ['ALTER TABLE "public"."users" ADD CONSTRAINT "users_email_key" UNIQUE '
                     'USING INDEX "users_email_key"'],
    }
    pk = plan(ops.AddPrimaryKey("events", ["tenant", "seq"]))
    assert len(pk["contract"]) == 9
    assert pk["contract"][-1] == ('ALTER TABLE "public"."events" ADD CONSTRAINT "events_pkey" '
                                  'PRIMARY KEY USING INDEX "events_pkey"')


def test_enum_and_sql_operations() -> None:
    assert plan(ops.CreateEnum("order_status", ["new", "it's"])) == {
        "expand": ['CREATE TYPE "public"."order_status" AS ENUM (\'new\', \'it\'\'s\')'],
        "rollback expand": ['DROP TYPE IF EXISTS "public"."order_status"']}
    assert plan(ops.AddEnumValue("order_status", "paid", before="shipped")) == {
        "expand": ['ALTER TYPE "public"."order_status" ADD VALUE IF NOT EXISTS \'paid\' BEFORE \'shipped\'']}
    got = plan(ops.SQL(expand="CREATE TABLE t (id int); CREATE INDEX CONCURRENTLY t_i ON t (id)",
                       rollback={"expand": "DROP TABLE t"}, contract=["DROP TABLE old"]))
    assert got == {"expand": ["CREATE TABLE t (id int)", "[autocommit] CREATE INDEX CONCURRENTLY t_i ON t (id)"],
                   "rollback expand": ["DROP TABLE t"], "contract": ["DROP TABLE old"]}


def test_every_operation_is_registered() -> None:
    names = {cls.__name__ for cls in ops.Operation.registry.values()}
    assert names >= set(ops.__all__) - {"Operation", "Requirement"}


@pytest.mark.parametrize("make, message", [
    (lambda: ops.AddColumn("users", "x", "int", nullable=False), "needs `up` or `default`"),
    (lambda: ops.AddColumn("users", "x", "int", up="1); DROP TABLE users; SELECT (1"),
     "must be a single SQL expression"),
    (lambda: ops.SetNotNull("users", "x", fill="lower("), "not a valid SQL expression"),
    (lambda: ops.ChangeColumnType("t", "a", "int", new_name="a", up="a", down="a"), "must differ"),
    (lambda: ops.AddForeignKey("t", ["a", "b"], "u", ["id"]), "2 columns reference 1"),
    (lambda: ops.CreateIndex("i", "t", ["a"], method="nope"), "unknown method"),
    (lambda: ops.AddEnumValue("e", "v", before="a", after="b"), "not both"),
    (lambda: ops.RenameColumn(".users", "a", "b"), "not 'name' or 'schema.name'"),
])
def test_bad_arguments_are_rejected_with_exit_2(make: object, message: str) -> None:
    with pytest.raises(OperationInvalid, match=message) as info:
        make()  # type: ignore[operator]
    assert info.value.exit_code == 2


def test_expressions_are_rewritten_on_the_parse_tree() -> None:
    assert on_record('lower("Email") || (SELECT t.x FROM t WHERE t.id = team_id)', "old") == (
        'lower(old."Email") || (SELECT t.x FROM t WHERE t.id = old.team_id)')


def test_generated_names_fit_postgresql_limit() -> None:
    name = generated_name("0042_" + "x" * 80, "rename", "column")
    assert len(name.encode()) == 63 and name.startswith("zdm_0042_")
    assert name != generated_name("0042_" + "x" * 80, "rename", "other")
