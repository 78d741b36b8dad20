"""The lint rules, one module each, and their registry (`all_rules`, `get_rule`).

Every rule has a stable kebab-case id (used in suppressions, config and
reports), a category that decides its severity per phase, a message saying
what, why and the safe way, and its own bad and good examples (checked by
tests and shown in docs/rules.md).
"""

from __future__ import annotations

from zdmigrate.errors import BadInput
from zdmigrate.lint.rules import (  # noqa: F401  (importing registers each rule)
    add_column_generated_stored,
    add_column_identity,
    add_column_not_null_without_default,
    add_column_serial,
    add_column_volatile_default,
    alter_domain_add_constraint,
    change_column_type,
    cluster,
    concurrently_in_transaction,
    constraint_not_valid,
    create_index_not_concurrently,
    detach_partition_not_concurrently,
    drop_column,
    drop_constraint,
    drop_database,
    drop_function,
    drop_index,
    drop_index_not_concurrently,
    drop_schema,
    drop_sequence,
    drop_table,
    drop_type,
    drop_view,
    enum_add_value_in_transaction,
    identifier_too_long,
    invalid_suppression,
    lock_table,
    prefer_bigint,
    prefer_identity,
    prefer_text,
    prefer_text_over_char,
    prefer_timestamptz,
    reindex_not_concurrently,
    rename_column,
    rename_enum_value,
    rename_object,
    rename_table,
    set_not_null,
    set_not_null_without_check,
    set_schema,
    syntax_error,
    transaction_nesting,
    truncate,
    truncate_cascade,
    unbatched_backfill,
    uncommitted_transaction,
    unique_constraint_without_index,
    unused_suppression,
    vacuum_full,
    validate_in_same_transaction,
)
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


def all_rules() -> dict[str, Rule]:
    """Every rule by id, sorted by id."""
    return dict(sorted(Rule.registry.items()))


def get_rule(rule_id: str) -> Rule:
    try:
        return Rule.registry[rule_id]
    except KeyError:
        raise BadInput(
            f"unknown lint rule {rule_id!r}", hint="`zdmigrate lint --list-rules` lists them"
        ) from None


__all__ = ["Category", "Example", "Finding", "Rule", "all_rules", "get_rule"]
