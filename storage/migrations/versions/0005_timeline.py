"""timeline updates (edits, reactions, pins), mentions, direct rooms, post comments and likes

Revision ID: 0005
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(length=40)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("edited_ts", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("update_data", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "message_edits",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "seq", "version"),
    )
    op.create_table(
        "message_reactions",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "seq", "emoji", "user_id"),
    )
    op.create_index("ix_message_reactions_user", "message_reactions", ["room_id", "user_id", "seq"])
    op.create_table(
        "reaction_counts",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_id", "seq", "emoji"),
    )
    op.create_table(
        "message_mentions",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "room_id", "seq"),
    )
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="group"))
        batch.add_column(sa.Column("direct_key", sa.String(length=90), nullable=True))
        batch.create_unique_constraint("uq_rooms_direct_key", ["direct_key"])
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("like_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("comment_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "post_likes",
        sa.Column("post_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "user_id"),
    )
    op.create_table(
        "post_comments",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_to", ID, nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_post_comments_post", "post_comments", ["post_id", "created", "id"])


def downgrade() -> None:
    op.drop_index("ix_post_comments_post", table_name="post_comments")
    op.drop_table("post_comments")
    op.drop_table("post_likes")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("comment_count")
        batch.drop_column("like_count")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_constraint("uq_rooms_direct_key", type_="unique")
        batch.drop_column("direct_key")
        batch.drop_column("kind")
    op.drop_table("message_mentions")
    op.drop_table("reaction_counts")
    op.drop_index("ix_message_reactions_user", table_name="message_reactions")
    op.drop_table("message_reactions")
    op.drop_table("message_edits")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("update_data")
        batch.drop_column("pinned")
        batch.drop_column("edited_ts")
