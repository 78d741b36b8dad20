"""`DualWrite`: which columns to write and read for a column change, by the migration's phase.

The rule, for each pair (old, new):

| phase (last completed)            | write        | read   |
|-----------------------------------|--------------|--------|
| pending                           | old only     | old    |
| expand, dual-write, backfill      | old and new  | old    |
| switch-read                       | old and new  | new    |
| contract                          | new only     | new    |

Code written for either shape works: values given under the old name are
copied to the new one (through `forward`), values given under the new name to
the old one (through `backward`). Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from zdmigrate.phases import Phase

if TYPE_CHECKING:
    from zdmigrate.runtime._runtime import Runtime

Transform = Callable[[Any], Any]
_MISSING = object()


def _same(value: Any) -> Any:
    return value


class DualWrite:
    """Write both shapes while both exist; read the one the phase says.

        dw = rt.dual_write("0002_rename_users_name", {"name": "full_name"})
        conn.execute(insert(users).values(dw.write({"name": "Ann"})))
        column = dw.read_column("name")      # "name" until switch-read, then "full_name"
        dw.compare(row)                      # shadow read: count rows where shapes differ
    """

    def __init__(
        self,
        runtime: Runtime,
        migration: str,
        columns: Mapping[str, str],
        *,
        forward: Mapping[str, Transform] | None = None,
        backward: Mapping[str, Transform] | None = None,
    ) -> None:
        if not columns:
            raise ValueError(f"dual_write({migration!r}): give at least one {{old: new}} column")
        for label, transforms in (("forward", forward), ("backward", backward)):
            stray = set(transforms or ()) - set(columns)
            if stray:
                raise ValueError(
                    f"dual_write({migration!r}): {label} names {sorted(stray)}, which are not "
                    f"old columns of the mapping {dict(columns)}"
                )
        self.runtime = runtime
        self.migration = migration
        self.columns: dict[str, str] = dict(columns)
        self._pairs = [
            (old, new, (forward or {}).get(old, _same), (backward or {}).get(old, _same))
            for old, new in self.columns.items()
        ]
        self._forward = {old: f for old, _, f, _ in self._pairs}
        self._backward = {old: b for old, _, _, b in self._pairs}

    @property
    def phase(self) -> Phase:
        return self.runtime.phase(self.migration)

    def write(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values to write now: `values` with each column pair completed or trimmed."""
        phase = self.runtime.phase(self.migration)
        out = dict(values)
        if phase is Phase.PENDING:
            for old, new, _, backward in self._pairs:
                if new in out:
                    value = out.pop(new)
                    if old not in out:
                        out[old] = backward(value)
        elif phase is Phase.CONTRACT:
            for old, new, forward, _ in self._pairs:
                if old in out:
                    value = out.pop(old)
                    if new not in out:
                        out[new] = forward(value)
        else:
            for old, new, forward, backward in self._pairs:
                if old in out:
                    if new not in out:
                        out[new] = forward(out[old])
                elif new in out:
                    out[old] = backward(out[new])
        return out

    def to_new(self, old: str, value: Any) -> Any:
        """`value` of column `old`, as the new column holds it (through `forward`)."""
        return self._forward[old](value)

    def to_old(self, old: str, value: Any) -> Any:
        """A value of the new column of `old`, as column `old` holds it (through `backward`)."""
        return self._backward[old](value)

    def read_column(self, old: str) -> str:
        """The column to read for `old`: the old name before switch-read, the new one after."""
        try:
            new = self.columns[old]
        except KeyError:
            raise ValueError(
                f"dual_write({self.migration!r}) has no column {old!r}; "
                f"it maps {sorted(self.columns)}"
            ) from None
        return new if self.runtime.phase(self.migration) >= Phase.SWITCH_READ else old

    def both_shapes(self) -> bool:
        """Whether both shapes exist now (expand done, contract not): reads may compare."""
        return Phase.PENDING < self.runtime.phase(self.migration) < Phase.CONTRACT

    def compare(self, row: object) -> bool:
        """Shadow read: does `row` hold the same data in both shapes? Counts the answer.

        `row` is a mapping (dict, SQLAlchemy ``RowMapping``) or an object with
        attributes (SQLAlchemy ``Row``) that carries both columns of a pair.
        Rows missing a column, and calls while only one shape exists, count
        nothing and return True. A transform that raises counts as a mismatch.
        """
        phase = self.runtime.phase(self.migration)
        if phase is Phase.PENDING or phase is Phase.CONTRACT:
            return True
        matched = True
        compared = False
        for old, new, forward, _ in self._pairs:
            old_value, new_value = _get(row, old), _get(row, new)
            if old_value is _MISSING or new_value is _MISSING:
                continue
            compared = True
            try:
                expected = forward(old_value)
            except Exception as exc:
                self.runtime.problems.report(f"shadow read of {self.migration}", exc)
                matched = False
                continue
            if expected != new_value:
                matched = False
        if compared:
            self.runtime.shadow_reads.record(self.migration, phase, matched)
        return matched

    def __repr__(self) -> str:
        return f"<DualWrite {self.migration} {self.columns} at {self.phase}>"


def _get(row: object, key: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(key, _MISSING)
    return getattr(row, key, _MISSING)
