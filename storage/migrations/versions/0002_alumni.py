"""alumni records, record members with profiles, invitations, feed entries

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(length=40)
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "alumni_records",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("school", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("class_name", sa.String(length=100), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("room_id"),
    )
    op.create_table(
        "alumni_members",
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("joined", sa.BigInteger(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("visibility", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["alumni_records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id", "user_id"),
    )
    op.create_index("ix_alumni_members_user", "alumni_members", ["user_id"])
    op.create_table(
        "invitations",
        sa.Column("id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("inviter_id", ID, nullable=False),
        sa.Column("invitee_id", ID, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("decided", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["alumni_records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["inviter_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invitee_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_invitations_pending",
        "invitations",
        ["record_id", "invitee_id"],
        unique=True,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_invitations_invitee", "invitations", ["invitee_id", "created"])
    op.create_index("ix_invitations_inviter", "invitations", ["inviter_id", "created"])
    op.create_table(
        "feed_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", ID, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("post_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["alumni_records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feed_entries_record_ts", "feed_entries", ["record_id", "ts", "id"])


def downgrade() -> None:
    op.drop_index("ix_feed_entries_record_ts", table_name="feed_entries")
    op.drop_table("feed_entries")
    op.drop_index("ix_invitations_inviter", table_name="invitations")
    op.drop_index("ix_invitations_invitee", table_name="invitations")
    op.drop_index("uq_invitations_pending", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_alumni_members_user", table_name="alumni_members")
    op.drop_table("alumni_members")
    op.drop_table("alumni_records")
