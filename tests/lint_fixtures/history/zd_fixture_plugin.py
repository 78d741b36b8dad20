"""A tiny Alembic plugin for the lint tests: registers op.rename_enum_label.

Like alembic-postgresql-enum's ops it runs SQL from inside the plugin's code,
so lint must report what it renders at the revision's call site.
"""

from alembic.operations import MigrateOperation, Operations


@Operations.register_operation("rename_enum_label")
class RenameEnumLabelOp(MigrateOperation):
    def __init__(self, enum_name, old, new):
        self.enum_name, self.old, self.new = enum_name, old, new

    @classmethod
    def rename_enum_label(cls, operations, enum_name, old, new):
        return operations.invoke(cls(enum_name, old, new))


@Operations.implementation_for(RenameEnumLabelOp)
def _rename_enum_label(operations, operation):
    operations.execute(
        f"ALTER TYPE {operation.enum_name} RENAME VALUE '{operation.old}' TO '{operation.new}'"
    )
