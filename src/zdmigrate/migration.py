"""Loading migration files (Alembic revision scripts) and rendering their phases.

A migrations directory holds Python files with module-level `revision` and
`down_revision`; Alembic's own `RevisionMap` orders them. Each file declares its
phases one of three ways:

- ``operations = [ops.RenameColumn(...)]``: high-level operations (kind "operations");
- functions ``expand(ctx)`` ... ``contract(ctx)`` and ``rollback_<phase>(ctx)`` (kind "phased");
- a plain Alembic revision with ``upgrade()``/``downgrade()`` (kind "alembic"): a
  one-step migration whose only phase is expand and whose rollback is downgrade().

Loading is pure: nothing touches a database. Any problem is a
`MigrationFileError` (exit 2) naming the file and line.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import re
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from zdmigrate.compat import AppCompat, parse_compat
from zdmigrate.context import PhaseContext, StepSink, offline_migration_context
from zdmigrate.errors import MigrationFileError, UnknownMigration, ZdmigrateError
from zdmigrate.phases import WORK_PHASES, Phase
from zdmigrate.steps import Source, Step

#: Held while a plain Alembic revision renders: `alembic.op` is one process-wide proxy.
_ALEMBIC_OP_LOCK = threading.RLock()

if TYPE_CHECKING:
    from zdmigrate.ops._names import QualifiedName
    from zdmigrate.ops.base import Operation, Requirement, Shape

PHASE_FUNCTIONS = {p.function_name: p for p in WORK_PHASES}
ROLLBACK_FUNCTIONS = {f"rollback_{p.function_name}": p for p in WORK_PHASES if p is not Phase.CONTRACT}
_MODULE_PREFIX = "zdmigrate_migrations"


@dataclass
class Migration:
    """One migration file, loaded. `id` is its Alembic `revision`."""

    id: str
    down_revisions: tuple[str, ...]
    path: Path
    checksum: str
    kind: str  # "phased", "operations" or "alembic"
    module: ModuleType = field(repr=False)
    operations: list[Operation] = field(default_factory=list)
    compat: dict[str, AppCompat] = field(default_factory=dict)
    #: ``version_schema = True`` in the file: at expand, a schema of views showing
    #: the new shape of the tables the operations change (see `new_shapes`).
    version_schema: bool = False

    @property
    def message(self) -> str:
        """The first line of the file's docstring (what Alembic shows as the message)."""
        doc = (self.module.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    @property
    def down_revision(self) -> str | None:
        return self.down_revisions[0] if len(self.down_revisions) == 1 else None

    @property
    def uses_version_schema(self) -> bool:
        """Does this migration have a version schema (``version_schema = True``, or an
        operation that renames through one)?"""
        return self.version_schema or any(
            getattr(op, "uses_version_schema", False) for op in self.operations)

    def new_shapes(self) -> list[Shape]:
        """The tables whose new shape differs from the physical table at the end of
        expand, one merged `Shape` each: the views of ``version_schema = True``."""
        from zdmigrate.ops import _version_schema as version_schema

        return version_schema.merge_shapes(
            shape for op in self.operations for shape in (op.new_shape() or []))

    def view_requirements(self) -> list[Requirement]:
        """Before expand: no table this migration adds columns to, or shows through a view
        of its own, has a view in the version schema of another migration in flight
        (that view lists the columns the table had at its expand: new versions would
        see neither the columns nor this migration's view behind it)."""
        from zdmigrate.ops import _version_schema as version_schema

        why: dict[QualifiedName, str] = {}
        for op in self.operations:
            for shape in op.new_shape() or []:
                if shape.needs_view and (self.version_schema or getattr(
                        op, "uses_version_schema", False)):
                    why.setdefault(shape.table, "this migration shows it through a view")
                elif shape.adds:
                    why.setdefault(shape.table, "this migration adds columns to it")
        return [version_schema.not_viewed_elsewhere(self.id, table, reason)
                for table, reason in why.items()]

    def reads_new_names_from(self) -> dict[str, str]:
        """Per app, the first version that uses the new names (compat's read_new_from,
        else old_unused_from): the versions that need the version schema."""
        out = {}
        for app, declared in self.compat.items():
            first = declared.read_new_from or declared.old_unused_from
            if first is not None:
                out[app] = str(first)
        return out

    def defines(self, phase: Phase) -> bool:
        """Does this migration do any work in `phase`?"""
        if self.kind == "operations":
            return any(op.steps(phase, self.id) for op in self.operations)
        if self.kind == "alembic":
            return phase is Phase.EXPAND
        return callable(getattr(self.module, phase.function_name, None))

    def can_roll_back(self, phase: Phase) -> bool:
        """Is there a way to undo `phase`? Contract never can be undone."""
        if phase is Phase.CONTRACT:
            return False
        if self.kind == "operations":
            return True
        if self.kind == "alembic":
            return phase is not Phase.EXPAND or callable(getattr(self.module, "downgrade", None))
        if not self.defines(phase) or phase is Phase.BACKFILL:
            # a backfill only fills new-shape columns; undoing expand removes them
            return True
        return callable(getattr(self.module, f"rollback_{phase.function_name}", None))

    def emit(self, phase: Phase, direction: str, sink: StepSink) -> None:
        """Produce the steps of `phase` (or of undoing it) into `sink`, in order.

        For phase functions this calls the author's code, so it may raise anything;
        the engine and `render` turn that into a MigrationFileError.
        """
        if self.kind == "operations":
            from zdmigrate.ops import _version_schema as version_schema

            ops = self.operations if direction == "advance" else list(reversed(self.operations))
            if self.version_schema and phase is Phase.EXPAND and direction == "rollback":
                # first: the views show columns the operations' rollbacks drop
                sink(version_schema.drop_shape_views_step(self.id, at_contract=False))
            for op in ops:
                if (self.version_schema and phase is Phase.EXPAND
                        and getattr(op, "uses_version_schema", False)):
                    continue  # a rename through a view: the view of the new shape shows it
                produced = (
                    op.steps(phase, self.id)
                    if direction == "advance"
                    else op.rollback_steps(phase, self.id)
                )
                for step in produced:
                    sink(step if step.source is not None or op.source is None
                         else replace(step, source=op.source))
            if self.version_schema and direction == "advance" and phase is Phase.EXPAND:
                shapes = self.new_shapes()
                for shape in shapes:
                    sink(version_schema.shape_view_step(self.id, shape))
                if not shapes:
                    sink(version_schema.create_schema_step(self.id))
            if self.version_schema and direction == "advance" and phase is Phase.CONTRACT:
                sink(version_schema.drop_shape_views_step(self.id, at_contract=True))
            if phase is Phase.EXPAND and direction == "advance" and self.uses_version_schema:
                sink(version_schema.comment_step(self.id, self.reads_new_names_from()))
            return
        if self.kind == "alembic":
            if phase is not Phase.EXPAND:
                return
            name = "upgrade" if direction == "advance" else "downgrade"
            function = getattr(self.module, name, None)
            if not callable(function):
                return
            from alembic.operations import Operations

            # Alembic's `op` is one proxy for the whole process: one revision at a time
            # (a run across many databases renders in threads)
            with _ALEMBIC_OP_LOCK, Operations.context(offline_migration_context(sink)):
                self._call(function, None, phase)
            return
        name = phase.function_name if direction == "advance" else f"rollback_{phase.function_name}"
        function = getattr(self.module, name, None)
        if callable(function):
            self._call(function, PhaseContext(self.id, phase, direction, sink), phase)

    def render(self, phase: Phase, direction: str = "advance") -> list[Step]:
        """The steps of `phase`, offline, without a database."""
        steps: list[Step] = []
        self.emit(phase, direction, steps.append)
        return steps

    def _call(self, function: Callable[..., Any], ctx: PhaseContext | None, phase: Phase) -> None:
        try:
            function(ctx) if ctx is not None else function()
        except ZdmigrateError:
            raise  # from the executing sink (lock timeouts, failed steps) or nested loads
        except SystemExit as exc:
            raise MigrationFileError(
                f"{function.__name__}() called sys.exit({exc.code!r}); "
                "a migration must not end the run",
                path=str(self.path), line=_line_in_file(exc, self.path),
            ) from None
        except Exception as exc:
            line = _line_in_file(exc, self.path)
            raise MigrationFileError(
                f"{function.__name__}() raised {type(exc).__name__}: {exc}",
                path=str(self.path), line=line,
            ) from exc


def migrations_folder(directory: Path | str) -> Path:
    """Where the revision files are: `directory`, or its ``versions/`` in an Alembic script folder.

    An Alembic (or Flask-Migrate) ``migrations/`` holds env.py and versions/; the
    revisions are in versions/, and env.py is not one of them.
    """
    folder = Path(directory)
    if (folder / "env.py").is_file() and (folder / "versions").is_dir():
        return folder / "versions"
    return folder


def load_migrations(directory: Path | str) -> list[Migration]:
    """Load every migration in `directory`, oldest first (Alembic's revision order)."""
    folder = migrations_folder(directory)
    if not folder.is_dir():
        raise MigrationFileError(
            f"migrations directory {folder} does not exist",
            hint="run `zdmigrate init` or pass --migrations DIR",
        )
    loaded: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith(("_", ".")):
            continue
        migration = load_file(path)
        if migration.id in loaded:
            raise MigrationFileError(
                f"revision {migration.id!r} is also declared in {loaded[migration.id].path.name}",
                path=str(path), line=_assignment_line(path, "revision"),
            )
        loaded[migration.id] = migration
    return _ordered(loaded)


def load_file(path: Path) -> Migration:
    """Load and validate one migration file."""
    source = path.read_bytes()
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        raise MigrationFileError(
            f"is not UTF-8 text (byte 0x{source[exc.start]:02x} cannot be decoded)",
            path=str(path), line=line, hint="save the file as UTF-8",
        ) from None
    module = _import(path)
    return migration_from_module(module, path)


def migration_from_module(module: ModuleType, path: Path) -> Migration:
    """Validate a migration module that is already imported (by us or by Alembic)."""
    source = path.read_bytes() if path.is_file() else b""
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str) or not revision:
        raise MigrationFileError(
            "no `revision = \"...\"` string at module level", path=str(path), line=1
        )
    down = _down_revisions(module, path)
    kind, operations = _kind(module, path)
    compat = parse_compat(
        getattr(module, "compat", None), str(path), _assignment_line(path, "compat")
    )
    return Migration(
        id=revision, down_revisions=down, path=path.resolve(),
        checksum=hashlib.sha256(source).hexdigest(), kind=kind, module=module,
        operations=operations, compat=compat,
        version_schema=_version_schema(module, path, kind, operations),
    )


def _version_schema(module: ModuleType, path: Path, kind: str,
                    operations: list[Operation]) -> bool:
    """``version_schema = True``: checked to be a bool, on operations that a view can show."""
    value = getattr(module, "version_schema", False)
    line = _assignment_line(path, "version_schema")
    if not isinstance(value, bool):
        raise MigrationFileError(
            f"version_schema must be True or False, not {value!r}", path=str(path), line=line)
    if not value:
        return False
    if kind != "operations":
        raise MigrationFileError(
            "version_schema = True needs `operations = [...]`: zdmigrate derives the views "
            "of the new shape from the operations, and cannot from phase functions or "
            "upgrade()", path=str(path), line=line)
    for op in operations:
        if op.new_shape() is None:
            raise MigrationFileError(
                f"version_schema = True: {op.describe()} cannot be shown through a view: "
                f"{op.no_view_reason()}", path=str(path),
                line=op.source.line if op.source is not None else line)
    return True


def find(migrations: Sequence[Migration], migration_id: str) -> Migration:
    """The migration with this id (or a unique prefix of it)."""
    if not migration_id.strip():
        raise UnknownMigration("the migration name is empty; give its revision id or leave it out")
    for migration in migrations:
        if migration.id == migration_id:
            return migration
    matches = [m for m in migrations if m.id.startswith(migration_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownMigration(
            f"migration {migration_id!r} is ambiguous: {len(matches)} ids start with it: "
            + ", ".join(m.id for m in matches),
            hint="give more of the id",
        )
    known = ", ".join(m.id for m in migrations) or "none"
    raise UnknownMigration(f"unknown migration {migration_id!r}; known: {known}")


def _import(path: Path) -> ModuleType:
    name = f"{_MODULE_PREFIX}.{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise MigrationFileError("cannot be imported", path=str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise MigrationFileError(
            f"syntax error: {exc.msg}", path=str(path), line=exc.lineno
        ) from None
    except SystemExit as exc:
        raise MigrationFileError(
            f"importing it called sys.exit({exc.code!r}); a migration file must not end the run",
            path=str(path), line=_line_in_file(exc, path),
        ) from None
    except Exception as exc:
        raise MigrationFileError(
            f"importing it raised {type(exc).__name__}: {exc}",
            path=str(path), line=_line_in_file(exc, path),
        ) from None
    return module


def _down_revisions(module: ModuleType, path: Path) -> tuple[str, ...]:
    if not hasattr(module, "down_revision"):
        raise MigrationFileError(
            "no `down_revision` at module level (None for the first migration)",
            path=str(path), line=1,
        )
    value = module.down_revision
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MigrationFileError(
        f"down_revision must be a string, a tuple of strings or None, not {value!r}",
        path=str(path), line=_assignment_line(path, "down_revision"),
    )


def _kind(module: ModuleType, path: Path) -> tuple[str, list[Operation]]:
    functions = {
        name: obj for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__
    }
    known = set(PHASE_FUNCTIONS) | set(ROLLBACK_FUNCTIONS) | {"upgrade", "downgrade"}
    for name, function in functions.items():
        if name in known or name.startswith("_"):
            continue
        params = list(inspect.signature(function).parameters)
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        if (params and params[0] == "ctx") or close or name.startswith("rollback_"):
            hint = f"did you mean {close[0]!r}?" if close else (
                "phase functions are " + ", ".join(PHASE_FUNCTIONS)
                + "; rollbacks are rollback_<phase> (contract cannot be rolled back); "
                "helpers should start with _"
            )
            raise MigrationFileError(
                f"unknown phase function {name!r}", path=str(path),
                line=function.__code__.co_firstlineno, hint=hint,
            )
    has_phases = any(name in functions for name in PHASE_FUNCTIONS)
    has_alembic = "upgrade" in functions
    operations = getattr(module, "operations", None)
    if operations is not None:
        # imported here: loading plain Alembic revisions (lint) need not pay for every op
        from zdmigrate.ops.base import Operation

        if has_phases or has_alembic:
            raise MigrationFileError(
                "declares both `operations` and phase functions; use one or the other",
                path=str(path), line=_assignment_line(path, "operations"),
            )
        if not isinstance(operations, (list, tuple)) or not all(
            isinstance(op, Operation) for op in operations
        ):
            raise MigrationFileError(
                "`operations` must be a list of zdmigrate.ops operations",
                path=str(path), line=_assignment_line(path, "operations"),
            )
        for operation, line in zip(operations, _operation_lines(path, len(operations)), strict=False):
            if operation.source is None:  # plan and lint show where each step was written
                operation.source = Source(str(path), line)
        return "operations", list(operations)
    if has_phases and has_alembic:
        raise MigrationFileError(
            "defines both upgrade() and phase functions; use one or the other", path=str(path),
            line=functions["upgrade"].__code__.co_firstlineno,
        )
    if has_phases:
        return "phased", []
    if has_alembic:
        return "alembic", []
    raise MigrationFileError(
        "defines no phases: add phase functions (expand(ctx), ...), `operations = [...]`, "
        "or an Alembic upgrade()", path=str(path), line=1,
    )


def _ordered(loaded: dict[str, Migration]) -> list[Migration]:
    if not loaded:
        return []
    for migration in loaded.values():
        for parent in migration.down_revisions:
            if parent not in loaded:
                raise MigrationFileError(
                    f"down_revision {parent!r} names no migration in this directory",
                    path=str(migration.path),
                    line=_assignment_line(migration.path, "down_revision"),
                )
    from alembic.script.revision import Revision, RevisionError, RevisionMap

    revisions = []
    for m in loaded.values():
        try:
            revisions.append(Revision(
                m.id, m.down_revisions[0] if len(m.down_revisions) == 1 else
                (m.down_revisions or None)))
        except RevisionError as exc:  # e.g. a character Alembic does not allow in an id
            raise MigrationFileError(
                f"revision {m.id!r}: {exc}", path=str(m.path),
                line=_assignment_line(m.path, "revision"),
            ) from None
    revision_map = RevisionMap(lambda: revisions)
    try:
        heads = revision_map.heads
        if len(heads) > 1:
            files = ", ".join(f"{h} ({loaded[h].path.name})" for h in sorted(heads))
            raise MigrationFileError(
                f"the migrations have {len(heads)} heads: {files}",
                hint="point the down_revision of one at the other, or add a merge revision "
                "whose down_revision is a tuple of both",
            )
        ordered = list(revision_map.iterate_revisions(heads, "base"))
    except RevisionError as exc:
        raise MigrationFileError(f"revision graph: {exc}") from None
    return [loaded[r.revision] for r in reversed(ordered)]


def _operation_lines(path: Path, count: int) -> list[int]:
    """The line of each operation in a literal ``operations = [...]`` (else the assignment's)."""
    import ast

    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets):
            if isinstance(value, (ast.List, ast.Tuple)) and len(value.elts) == count:
                return [element.lineno for element in value.elts]
            return [node.lineno] * count
    return []


def _assignment_line(path: Path, name: str) -> int | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    pattern = re.compile(rf"^{re.escape(name)}\s*[:=]")
    for number, line in enumerate(lines, 1):
        if pattern.match(line):
            return number
    return None


def _line_in_file(exc: BaseException, path: Path) -> int | None:
    target = str(Path(path).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


def parents_of(migration: Migration, migrations: Sequence[Migration]) -> list[Migration]:
    by_id = {m.id: m for m in migrations}
    return [by_id[p] for p in migration.down_revisions if p in by_id]


def children_of(migration: Migration, migrations: Sequence[Migration]) -> list[Migration]:
    return [m for m in migrations if migration.id in m.down_revisions]


# make "zdmigrate_migrations.x" importable as a package namespace for pickling/tracebacks
sys.modules.setdefault(_MODULE_PREFIX, ModuleType(_MODULE_PREFIX))
