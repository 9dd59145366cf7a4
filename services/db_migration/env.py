"""Alembic environment: always runs on the connection the migrator hands over.

The migrator holds the advisory lock and the transaction on that connection, so every revision
of one run commits together or not at all (PostgreSQL has transactional DDL).
"""

from alembic import context

connection = context.config.attributes["connection"]
on_version_apply = context.config.attributes.get("on_version_apply")

context.configure(
    connection=connection,
    target_metadata=None,
    transaction_per_migration=False,
    on_version_apply=on_version_apply,
)
with context.begin_transaction():
    context.run_migrations()
