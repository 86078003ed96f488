"""``python -m server.history upgrade``: brings the history's database (``PARLEY_DATABASE_URL``, or SQLite in the
data folder) to the newest schema, as the server does at start-up; ``current`` says where it stands."""

from __future__ import annotations

import argparse
import asyncio
import sys

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import SQLAlchemyError

from server.config import Settings
from server.history import db


async def _current(url: str) -> str | None:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.history", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "current", "heads"])
    args = parser.parse_args(argv)
    url = db.database_url(Settings.from_env())
    if args.action == "upgrade":
        db.migrate(url)
    if args.action == "heads":
        command.heads(db.alembic_config())
        return 0
    try:
        print(asyncio.run(_current(url)) or "empty (no schema yet)")
    except SQLAlchemyError as exc:
        print(f"the database cannot be read: {exc.__class__.__name__}: {exc.orig or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
