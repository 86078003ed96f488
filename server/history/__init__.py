"""The record of every call (issue 17): who called, in which mode and language, when and why it ended, each turn
as heard with its latency figures, and an interview's questions and scorecard.

- ``schema``: the tables (SQLAlchemy 2); ``migrations/``: Alembic, run at start-up (``db.migrate``);
- ``db``: the database URL (SQLite in the data folder by default, PostgreSQL when ``PARLEY_DATABASE_URL`` says so);
- ``store``: reads and writes, one short transaction each;
- ``writer``: a bounded queue and one background task, so that the call never waits for the database;
- ``recorder``: one call's events, turned into writes;
- ``api``: the HTTP routes (list, get, export, delete) and the periodic retention.
"""
