"""Dollar-quote tags: a statement of several DO blocks keeps them; a body holding the tag is retagged."""

from __future__ import annotations

from zdmigrate.ops._names import retagged


def test_several_blocks_in_one_statement_are_left_alone() -> None:
    text = ("DO $zdm$ BEGIN PERFORM 1; END $zdm$; ALTER TABLE t RENAME a TO b; "
            "DO $zdm$ BEGIN PERFORM 2; END $zdm$")
    assert retagged(text) == text


def test_a_name_holding_the_tag_gets_another_tag_in_its_block_only() -> None:
    text = ("DO $zdm$ BEGIN EXECUTE 'ALTER TABLE t ADD \"a$zdm$b\" int'; END $zdm$; "
            "DO $zdm$ BEGIN PERFORM 2; END $zdm$")
    assert retagged(text) == (
        "DO $zdm1$ BEGIN EXECUTE 'ALTER TABLE t ADD \"a$zdm$b\" int'; END $zdm1$; "
        "DO $zdm$ BEGIN PERFORM 2; END $zdm$")
    function = ('CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $zdm$ BEGIN '
                'NEW."a$zdm$b" := 1; RETURN NEW; END $zdm$')
    assert retagged(function).endswith("END $zdm1$") and "AS $zdm1$ BEGIN" in retagged(function)
