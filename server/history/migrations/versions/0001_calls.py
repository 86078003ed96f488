"""Calls: profiles, sessions and their turns.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("display_name", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("call_id", sa.String(40), nullable=False, index=True),
        sa.Column("profile_id", sa.String(160), sa.ForeignKey("profiles.id", ondelete="CASCADE"), index=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False, index=True),
        sa.Column("ended_at", TZ),
        sa.Column("end_reason", sa.String(24)),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(40), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("interrupted", sa.Boolean, nullable=False),
        sa.Column("at", TZ, nullable=False),
        *(sa.Column(f"{name}_ms", sa.Integer) for name in ("stt", "llm_first_token", "llm_first_sentence")),
        sa.Column("tts_first_audio_ms", sa.Integer),
        sa.Column("response_ms", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_table("sessions")
    op.drop_table("profiles")
