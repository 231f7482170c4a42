"""The blob store: file bytes behind one small interface, with two engines (docs/protocol.md §12.10).

`FilesystemBlobStore` keeps blobs under a directory (one node); `DatabaseBlobStore` keeps them in
the database in chunks, so every node sharing a PostgreSQL database reads what any node wrote.
"""

from .base import Blob, BlobStore, BlobTooLarge
from .database import DatabaseBlobStore
from .filesystem import FilesystemBlobStore

__all__ = ["Blob", "BlobStore", "BlobTooLarge", "DatabaseBlobStore", "FilesystemBlobStore"]
