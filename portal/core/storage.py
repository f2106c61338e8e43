"""Where backup files live, behind a small interface: a local folder (LocalStorage) or
the portal's own database (DatabaseStorage, the default on PostgreSQL, so that every
web and worker node reads the same files; docs/decisions/file-store.md).

A backup is written once, as a stream of bytes; the storage returns its size and
sha256, which the Backup row keeps. Every read is verified against that checksum
(service.verify()): a file that was changed, truncated or lost is refused."""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import Engine, delete, insert, select, update

from portal import clock
from portal.extensions import db

_KEY = re.compile(r"^[0-9]+/[A-Za-z0-9._-]+$")


class StorageError(Exception):
    """The storage could not do what was asked (file missing, disk full, ...)."""


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    checksum: str  # sha256, hex


@dataclass(frozen=True)
class StoredEntry:
    key: str
    modified_at: datetime


def new_key(account_id: int) -> str:
    """One key per backup, under its account: `<account_id>/<random>.csv.gz`."""
    return f"{int(account_id)}/{uuid.uuid4().hex}.csv.gz"


class BackupStorage(ABC):
    """What the backups area needs of a storage. Keys look like `<account_id>/<name>`."""

    @abstractmethod
    def write_stream(self, key: str, chunks: Iterable[bytes]) -> StoredFile:
        """Store the chunks under `key` (all or nothing) and return size and sha256."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The stored bytes, for reading; StorageError when the file is missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error (retention may run twice)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def entries(self) -> Iterator[StoredEntry]:
        """Every stored file with its age, for the sweep of files without a row."""


class LocalStorage(BackupStorage):
    """Files in a folder (BACKUP_DIR, default instance/backups), one subfolder per account.
    A file is written under a temporary name and renamed when complete, so a reader
    never sees half a backup."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> StoredFile:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        digest = hashlib.sha256()
        size = 0
        try:
            with partial.open("wb") as fh:
                for chunk in chunks:
                    if chunk:
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredFile(key=key, size=size, checksum=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"backup file {key!r} is missing") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def entries(self) -> Iterator[StoredEntry]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if not folder.is_dir() or not folder.name.isdigit():
                continue
            for path in folder.iterdir():
                if path.is_file():
                    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    # partial files of an interrupted write are swept too
                    yield StoredEntry(key=f"{folder.name}/{path.name}", modified_at=modified)


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise StorageError(f"invalid backup key {key!r}")
    return key


CHUNK_BYTES = 1 << 20  # one row of stored_file_chunks: what a read holds in memory


class DatabaseStorage(BackupStorage):
    """Files as rows of the portal's own database: stored_files (key, size, sha256) and
    stored_file_chunks (the bytes, CHUNK_BYTES a row). Every web and worker node sees
    the same files, with nothing to run but the database.

    It works on its own connections (engine.connect()), never in the caller's session:
    a file is there once write_stream returns, whatever the caller's transaction does
    later (as with a folder; a file whose row never commits is swept by its age), and
    the caller's connection may be busy streaming the very rows being written
    (service._postgres_chunks). The file row and all chunks commit in one transaction,
    so a reader never sees half a file and an interrupted write (an error, a killed
    process: the database rolls back) leaves nothing behind."""

    def __init__(self, engine: Engine, area: str = "backups") -> None:
        # the tables still live in backups.models (a deliberate exception of the layers
        # contract, pyproject.toml): imported here, where no cycle forms
        from portal.backups.models import StoredFileChunk, StoredFileRecord

        self.engine = engine
        self.area = area
        self.files = StoredFileRecord.__table__
        self.chunks = StoredFileChunk.__table__

    def _where(self, key: str):
        return (self.files.c.area == self.area, self.files.c.key == _check_key(key))

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> StoredFile:
        files, parts = self.files, self.chunks
        digest = hashlib.sha256()
        size = seq = 0
        pending = bytearray()
        with self.engine.begin() as conn:
            ids = select(files.c.id).where(*self._where(key)).scalar_subquery()
            conn.execute(delete(parts).where(parts.c.file_id == ids))
            conn.execute(delete(files).where(*self._where(key)))
            file_id = conn.execute(
                insert(files)
                .values(area=self.area, key=key, size=0, sha256="", chunks=0)
                .returning(files.c.id)
            ).scalar_one()

            def flush(data: bytes) -> None:
                nonlocal seq
                conn.execute(insert(parts), {"file_id": file_id, "seq": seq, "data": data})
                seq += 1

            for chunk in chunks:
                if not chunk:
                    continue
                digest.update(chunk)
                size += len(chunk)
                pending += chunk
                while len(pending) >= CHUNK_BYTES:
                    flush(bytes(pending[:CHUNK_BYTES]))
                    del pending[:CHUNK_BYTES]
            if pending:
                flush(bytes(pending))
            conn.execute(
                update(files)
                .where(files.c.id == file_id)
                .values(size=size, sha256=digest.hexdigest(), chunks=seq, created_at=clock.now())
            )
        return StoredFile(key=key, size=size, checksum=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(self.files.c.id, self.files.c.chunks).where(*self._where(key))
            ).first()
        if row is None:
            raise StorageError(f"backup file {key!r} is missing")
        reader = _ChunkReader(self, key, file_id=row.id, chunks=row.chunks)
        return io.BufferedReader(reader, buffer_size=CHUNK_BYTES)

    def _chunk(self, key: str, file_id: int, seq: int) -> bytes | None:
        """One chunk, on a connection of its own for just this query: an open file holds
        no connection (a download may be read slowly, or left half-read)."""
        files, parts = self.files, self.chunks
        with self.engine.connect() as conn:
            return conn.execute(
                select(parts.c.data)
                .join(files, files.c.id == parts.c.file_id)
                .where(files.c.id == file_id, *self._where(key), parts.c.seq == seq)
            ).scalar()

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            ids = select(self.files.c.id).where(*self._where(key)).scalar_subquery()
            conn.execute(delete(self.chunks).where(self.chunks.c.file_id == ids))
            conn.execute(delete(self.files).where(*self._where(key)))

    def exists(self, key: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(self.files.c.id).where(*self._where(key))).first()
        return found is not None

    def entries(self) -> Iterator[StoredEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.files.c.key, self.files.c.created_at)
                .where(self.files.c.area == self.area)
                .order_by(self.files.c.id)
            ).all()
        for key, created_at in rows:
            yield StoredEntry(key=key, modified_at=created_at)


class _ChunkReader(io.RawIOBase):
    """A stored file read chunk by chunk: at most one chunk in memory. A chunk that is
    gone before the last one (the file was deleted meanwhile) is a StorageError; a
    changed chunk is found by the caller's checksum."""

    def __init__(self, storage: DatabaseStorage, key: str, *, file_id: int, chunks: int):
        super().__init__()
        self._storage, self._key, self._id, self._chunks = storage, key, file_id, chunks
        self._seq = 0
        self._data = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._data:
            if self._seq >= self._chunks:
                return 0
            data = self._storage._chunk(self._key, self._id, self._seq)
            if data is None:
                raise StorageError(f"backup file {self._key!r} lost chunk {self._seq}")
            self._seq += 1
            self._data = memoryview(data)
        n = min(len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


FOLDER, DATABASE = "folder", "postgresql"
STORES = (FOLDER, DATABASE)


def storage_named(name: str) -> BackupStorage:
    """One of the stores by its FILE_STORE name."""
    if name == FOLDER:
        return LocalStorage(current_app.config["BACKUP_DIR"])
    if name == DATABASE:
        return DatabaseStorage(db.engine)
    raise StorageError(f"unknown file store {name!r} (one of: {', '.join(STORES)})")


class DatabaseWithFolder(BackupStorage):
    """The database store that still reads the files an installation kept in its folder
    before it moved to PostgreSQL's store: after the upgrade every backup stays readable
    (restore, undo, download) until `flask portal move-files --to postgresql` has moved
    it, or its retention removes it. New files go to the database only."""

    def __init__(self, database: BackupStorage, folder: BackupStorage) -> None:
        self.database, self.folder = database, folder

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> StoredFile:
        return self.database.write_stream(key, chunks)

    def open(self, key: str) -> BinaryIO:
        if self.database.exists(key):
            return self.database.open(key)
        return self.folder.open(key)  # StorageError when it is in neither

    def delete(self, key: str) -> None:
        self.database.delete(key)
        self.folder.delete(key)

    def exists(self, key: str) -> bool:
        return self.database.exists(key) or self.folder.exists(key)

    def entries(self) -> Iterator[StoredEntry]:
        yield from self.database.entries()
        yield from self.folder.entries()


def get_storage() -> BackupStorage:
    """The configured store (FILE_STORE: the database on PostgreSQL, else the folder).
    The database store also reads what is still in the folder (DatabaseWithFolder)."""
    name = current_app.config["FILE_STORE"]
    if name == DATABASE:
        return DatabaseWithFolder(storage_named(DATABASE), storage_named(FOLDER))
    return storage_named(name)
