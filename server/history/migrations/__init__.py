"""Alembic migrations of the history (a package, so that an installed wheel carries them)."""
