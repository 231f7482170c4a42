"""group administration: mute-all, group cards, mutes, bans, join requests, announcements, pins

Revision ID: 0007
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(length=40)
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch would copy the tables, dropping the search
    # triggers that migration 0004 put on `rooms`.
    op.add_column("rooms", sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("memberships", sa.Column("nickname", sa.String(length=32), nullable=True))
    op.create_table(
        "room_mutes",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.Column("by_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "user_id"),
    )
    op.create_table(
        "room_bans",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("by_id", ID, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "user_id"),
    )
    op.create_table(
        "join_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("decided", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_join_requests_pending", "join_requests", ["room_id", "user_id"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_join_requests_room", "join_requests", ["room_id", "status", "created"])
    op.create_table(
        "room_notices",
        sa.Column("id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("by_id", ID, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_room_notices_room_ts", "room_notices", ["room_id", "ts", "id"])
    op.create_table(
        "room_pins",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("by_id", ID, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("room_pins")
    op.drop_index("ix_room_notices_room_ts", table_name="room_notices")
    op.drop_table("room_notices")
    op.drop_index("ix_join_requests_room", table_name="join_requests")
    op.drop_index("uq_join_requests_pending", table_name="join_requests")
    op.drop_table("join_requests")
    op.drop_table("room_bans")
    op.drop_table("room_mutes")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("nickname")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("muted")
