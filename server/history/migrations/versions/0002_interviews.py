"""Interviews: each question asked with its verdict and key points, and the scorecard.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _session_id(primary_key: bool = False) -> sa.Column:
    foreign = sa.ForeignKey("sessions.id", ondelete="CASCADE")
    if primary_key:
        return sa.Column("session_id", sa.String(40), foreign, primary_key=True)
    return sa.Column("session_id", sa.String(40), foreign, nullable=False, index=True)


def upgrade() -> None:
    op.create_table(
        "interview_questions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _session_id(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("question_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("covered", sa.JSON, nullable=False),
        sa.Column("missed", sa.JSON, nullable=False),
        sa.UniqueConstraint("session_id", "position"),
    )
    op.create_table(
        "scorecards",
        _session_id(primary_key=True),
        sa.Column("asked", sa.Integer, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("totals", sa.JSON, nullable=False),
        sa.Column("study_next", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scorecards")
    op.drop_table("interview_questions")
