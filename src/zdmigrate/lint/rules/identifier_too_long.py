"""identifier-too-long: names over 63 bytes are silently truncated by PostgreSQL.

The parser already truncates identifiers in the parse tree, so this rule reads
the statement's tokens (pglast's scanner) to see the names as written.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint._parse import Statement
from zdmigrate.lint._pglast import load_parser
from zdmigrate.lint._state import LintState
from zdmigrate.lint._violation import Severity
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_pg = load_parser()
MAX_BYTES = 63  # NAMEDATALEN - 1
#: the bytes that end an unquoted identifier besides whitespace, as spaces
_DELIMITERS = bytes.maketrans(b"(),;.'\"", b"       ")


def _has_long_run(data: bytes) -> bool:
    """Cheap pre-filter: some run of 64+ bytes that could be one identifier (unquoted, or
    after a double quote). Splitting is linear; a regex search retries inside every run."""
    return (max(map(len, data.translate(_DELIMITERS).split()), default=0) > MAX_BYTES
            or max(map(len, data.split(b'"')[1:]), default=0) > MAX_BYTES)


def long_identifiers(sql: str) -> Iterator[tuple[str, int]]:
    """(identifier as written, its length in bytes) for identifiers over 63 bytes."""
    data = sql.encode("utf-8", "surrogatepass")
    if not _has_long_run(data):
        return
    try:
        tokens = _pg.scan(sql)
    except _pg.ParseError:
        return
    for token in tokens:
        if token.name != "IDENT":
            continue
        # scan() counts characters, end inclusive
        name = sql[token.start : token.end + 1]
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = name[1:-1].replace('""', '"')
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > MAX_BYTES:
            yield name, size


class IdentifierTooLong(Rule):
    id = "identifier-too-long"
    category = Category.CORRECTNESS
    default_severity = Severity.WARNING
    summary = "an identifier longer than 63 bytes"
    why = (
        "PostgreSQL truncates it to 63 bytes with only a NOTICE: the object gets another "
        "name than the app and later migrations use, and two long names can collide."
    )
    fix = "use a name of at most 63 bytes (UTF-8: accents and emoji take several)."
    exempt_new_tables = False
    targets = (
        "CreateStmt", "AlterTableStmt", "IndexStmt", "DropStmt", "RenameStmt", "ViewStmt",
        "CreateTableAsStmt", "CreateSeqStmt", "CreateSchemaStmt", "CreateTrigStmt",
        "CreateFunctionStmt", "CreateEnumStmt", "CreateDomainStmt", "CompositeTypeStmt",
        "AlterObjectSchemaStmt",
    )
    bad = (Example("CREATE INDEX CONCURRENTLY orders_customer_id_created_at_status_total_amount_currency_btree_idx "
                   "ON orders (customer_id, created_at, status, total_amount, currency);"),)
    good = (Example("CREATE INDEX CONCURRENTLY orders_customer_created_idx "
                    "ON orders (customer_id, created_at);"),)

    def could_flag(self, text: str) -> bool:
        # each statement's SQL is a piece of the text: without a long run in the text, none
        # has one. Any other text is left to `check`: a statement's SQL is decoded anew, which
        # turns a lone surrogate into a longer replacement character
        return not text.isascii() or _has_long_run(text.encode())

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        seen: set[str] = set()
        for name, size in long_identifiers(stmt.sql):
            if name not in seen:
                seen.add(name)
                yield Finding(f"identifier {name!r} is {size} bytes")
