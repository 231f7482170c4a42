"""posts, the records each is published to, and finding a post's feed entries

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_posts_author_created", "posts", ["author_id", "created", "id"])
    op.create_table(
        "post_records",
        sa.Column("post_id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("post_created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["alumni_records.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "record_id"),
    )
    op.create_index("ix_post_records_record", "post_records", ["record_id", "post_created", "post_id"])
    # Editing or deleting a post finds its feed entries in every record.
    op.create_index("ix_feed_entries_post", "feed_entries", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_entries_post", table_name="feed_entries")
    op.drop_index("ix_post_records_record", table_name="post_records")
    op.drop_table("post_records")
    op.drop_index("ix_posts_author_created", table_name="posts")
    op.drop_table("posts")
