"""Language practice: the corrections and suggestions the bot made, per profile and language.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(40), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("profile_id", sa.String(160), sa.ForeignKey("profiles.id", ondelete="CASCADE")),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("phrase", sa.Text, nullable=False),
        sa.Column("said", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("revisited_at", TZ),
    )
    op.create_index("ix_corrections_profile_language", "corrections", ["profile_id", "language"])


def downgrade() -> None:
    op.drop_index("ix_corrections_profile_language", "corrections")
    op.drop_table("corrections")
