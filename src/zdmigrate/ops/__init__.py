"""High-level expand/contract operations, one module each, collected in a registry.

    from zdmigrate import ops
    operations = [ops.RenameColumn("users", "name", "full_name")]
"""

from zdmigrate.ops.base import Operation, Requirement

__all__ = ["Operation", "Requirement"]
