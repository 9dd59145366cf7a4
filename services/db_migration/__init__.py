"""The db-migration service: brings the schema to head and reports its progress."""

from .migrator import COMPLETED, FAILED, IN_PROGRESS, PENDING, MigrationState, Migrator, head_revision, read_state
from .wait import SchemaBehind, wait_for_schema

__all__ = [
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "PENDING",
    "MigrationState",
    "Migrator",
    "SchemaBehind",
    "head_revision",
    "read_state",
    "wait_for_schema",
]
