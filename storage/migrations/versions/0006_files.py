"""files: metadata, where each is attached, the database blob store, avatars, files on messages and posts

Revision ID: 0006
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("thumb", sa.String(length=64), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("attached", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_files_owner", "files", ["owner_id"])
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_table(
        "file_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("post_id", ID, nullable=True),
        sa.ForeignKeyConstraint(["room_id", "seq"], ["messages.room_id", "messages.seq"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_file_links_file", "file_links", ["file_id"])
    op.create_index("ix_file_links_message", "file_links", ["room_id", "seq"])
    op.create_index("ix_file_links_post", "file_links", ["post_id"])
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", "n"),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("avatar", sa.String(length=40), nullable=True))
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("avatar", sa.String(length=40), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("files", sa.JSON(), nullable=True))
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("files", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("posts", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("files")
    for table in ("rooms", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("avatar")
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
    op.drop_table("file_links")
    op.drop_table("files")
