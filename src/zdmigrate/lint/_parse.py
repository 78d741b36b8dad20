"""The parser wrapper: SQL text to statements, using pglast's JSON parse tree.

pglast wraps libpg_query, the real PostgreSQL parser. Its JSON output loaded
with `json.loads` is several times faster than building pglast's AST objects, so
rules work on plain dicts: ``{"AlterTableStmt": {...}}``. Absent keys mean the
protobuf default (false, 0, empty).

Surprise: locations in the JSON tree are byte offsets into the UTF-8 text,
while pglast's split(), scan() and ParseError count characters.

Text that does not parse is split with the scanner-only splitter, each piece is
parsed on its own, and the pieces that fail become `SyntaxProblem`s naming
their line, so one typo does not hide the rest of a file.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from zdmigrate.lint._pglast import load_parser

_pg = load_parser()

Node = dict[str, Any]


@dataclass(slots=True)
class Statement:
    """One parsed statement: its node type, its fields, its SQL and where it starts.

    Treat it as read-only. It is not frozen only because a frozen dataclass
    costs a call per field to build, and a 5,000-statement file builds 5,000.
    """

    kind: str  # the node type, e.g. "AlterTableStmt"
    node: Node  # the fields of that node
    sql: str
    line: int  # 1-based line of the statement's first token within the parsed text
    offset: int  # byte offset of the first token


class SyntaxProblem(NamedTuple):
    """A piece of the text that does not parse: the parser's message, its line, its SQL."""

    message: str
    line: int
    sql: str


class Parsed(NamedTuple):
    """The statements of a text, and the pieces of it that did not parse.

    NamedTuples, these two: immutable records, built for every text parsed without
    compiling a frozen dataclass's six methods at import.
    """

    statements: list[Statement]
    problems: list[SyntaxProblem]


_SKIP = re.compile(rb"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)


def parse(text: str) -> Parsed:
    """Parse SQL text into statements; never raises on bad SQL."""
    data = text.encode("utf-8", "surrogatepass")
    try:
        tree = _decode(_pg.parse_sql_json(text))
    except _pg.ParseError:
        return _parse_pieces(text, data)
    return Parsed(_statements(tree, data, 0, 0), [])


def _decode(tree_json: str) -> Node:
    with gc_paused():
        return json.loads(tree_json)  # type: ignore[no-any-return]


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC paused (then restored): parse trees are many containers and no cycles.

    A 5,000-statement file decodes to ~70,000 dicts and lists; GC passes over them
    on the way cost several percent of a lint. Everything built here is freed by reference
    counting, so pausing leaks nothing.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _statements(tree: Node, data: bytes, base: int, base_line: int) -> list[Statement]:
    out: list[Statement] = []
    line = 1 + base_line
    pos = 0
    size = len(data)
    for raw in tree.get("stmts", ()):
        start = raw.get("stmt_location", 0)
        length = raw.get("stmt_len", 0) or (size - start)
        end = start + length
        first = _SKIP.match(data, start, end)
        begin = first.end() if first else start
        line += data.count(b"\n", pos, begin)
        pos = begin
        ((kind, node),) = raw["stmt"].items()
        sql = data[begin:end].decode("utf-8", "replace").rstrip()
        out.append(Statement(kind, node, sql, line, base + begin))
    return out


def _parse_pieces(text: str, data: bytes) -> Parsed:
    # split(), scan() and ParseError positions count characters, the JSON tree bytes
    statements: list[Statement] = []
    problems: list[SyntaxProblem] = []
    try:
        pieces = _pg.split(text, with_parser=False, only_slices=True)
    except _pg.ParseError:  # the scanner itself failed (unterminated quote, ...)
        pieces = (slice(0, len(text)),)
    for piece in pieces:
        chunk = text[piece.start : piece.stop]
        base_line = text.count("\n", 0, piece.start)
        try:
            tree = _decode(_pg.parse_sql_json(chunk))
        except _pg.ParseError as exc:
            message = str(exc.args[0]) if exc.args else "syntax error"
            where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            lead = len(chunk) - len(chunk.lstrip())
            line = base_line + chunk.count("\n", 0, max(where, lead)) + 1
            problems.append(SyntaxProblem(message, line, chunk.strip()))
            continue
        base = len(text[: piece.start].encode("utf-8", "surrogatepass"))
        statements.extend(
            _statements(tree, chunk.encode("utf-8", "surrogatepass"), base, base_line)
        )
    return Parsed(statements, problems)
