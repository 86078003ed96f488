"""Alembic's environment: migrations run on the connection the server hands over (``server/history/db.py``)."""

from __future__ import annotations

from alembic import context

from server.history.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the history's migrations through server.history.db (python -m server.history upgrade)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
