"""High-level expand/contract operations, one module each, collected in a registry.

    from zdmigrate import ops
    operations = [ops.RenameColumn("users", "name", "full_name")]

Each operation returns the steps of every phase and of every rollback as data
(`Operation.steps`, `Operation.rollback_steps`) and the checks it needs on the
live schema (`Operation.requirements`); it never touches a connection.
`Operation.registry` maps each operation's `name` to its class.
"""

from zdmigrate.ops.add_check import AddCheck
from zdmigrate.ops.add_column import AddColumn
from zdmigrate.ops.add_enum_value import AddEnumValue
from zdmigrate.ops.add_foreign_key import AddForeignKey
from zdmigrate.ops.add_primary_key import AddPrimaryKey
from zdmigrate.ops.add_unique import AddUnique
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.ops.change_column_type import ChangeColumnType
from zdmigrate.ops.create_enum import CreateEnum
from zdmigrate.ops.create_index import CreateIndex
from zdmigrate.ops.create_table import CreateTable
from zdmigrate.ops.drop_column import DropColumn
from zdmigrate.ops.drop_constraint import DropConstraint
from zdmigrate.ops.drop_default import DropDefault
from zdmigrate.ops.drop_index import DropIndex
from zdmigrate.ops.drop_not_null import DropNotNull
from zdmigrate.ops.drop_table import DropTable
from zdmigrate.ops.raw_sql import SQL
from zdmigrate.ops.rename_column import RenameColumn
from zdmigrate.ops.rename_constraint import RenameConstraint
from zdmigrate.ops.rename_table import RenameTable
from zdmigrate.ops.set_comment import SetComment
from zdmigrate.ops.set_default import SetDefault
from zdmigrate.ops.set_not_null import SetNotNull
from zdmigrate.ops.set_replica_identity import SetReplicaIdentity
from zdmigrate.ops.widen_column_type import WidenColumnType

__all__ = [
    "SQL",
    "AddCheck",
    "AddColumn",
    "AddEnumValue",
    "AddForeignKey",
    "AddPrimaryKey",
    "AddUnique",
    "ChangeColumnType",
    "CreateEnum",
    "CreateIndex",
    "CreateTable",
    "DropColumn",
    "DropConstraint",
    "DropDefault",
    "DropIndex",
    "DropNotNull",
    "DropTable",
    "Operation",
    "RenameColumn",
    "RenameConstraint",
    "RenameTable",
    "Requirement",
    "SetComment",
    "SetDefault",
    "SetNotNull",
    "SetReplicaIdentity",
    "WidenColumnType",
]
