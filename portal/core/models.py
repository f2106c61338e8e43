"""The tables of the PostgreSQL file store (storage.DatabaseStorage), shared by every
area that keeps files: backups, uploads, exports and the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DDL,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.database import BigId, UTCDateTime
from portal.extensions import db


class StoredFileRecord(db.Model):
    """A file of the PostgreSQL file store (storage.DatabaseStorage): its bytes are the
    rows of stored_file_chunks. A row is committed in the same transaction as all its
    chunks, so a half-written file is never visible and an interrupted write leaves
    nothing. `area` keeps the kinds of files apart (backups, uploads, exports, outbox)."""

    __tablename__ = "stored_files"
    __table_args__ = (UniqueConstraint("area", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    area: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class StoredFileChunk(db.Model):
    """One piece (up to storage.CHUNK_BYTES) of a stored file, in order of `seq`."""

    __tablename__ = "stored_file_chunks"

    file_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("stored_files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


# gzip'd bytes do not compress again: PostgreSQL stores them out of line as they are
# instead of trying (and failing) to compress every megabyte first
event.listen(
    StoredFileChunk.__table__,
    "after_create",
    DDL("ALTER TABLE stored_file_chunks ALTER COLUMN data SET STORAGE EXTERNAL").execute_if(
        dialect="postgresql"
    ),
)
