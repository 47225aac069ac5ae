"""Alembic environment: runs revisions on the connection that oomfuzz.db.engine hands over."""

from alembic import context

from oomfuzz.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through oomfuzz.db.engine.upgrade(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
