"""Where every file the portal keeps lives, behind one small interface: a local folder
(LocalStorage) or the portal's own database (DatabaseStorage, the default on PostgreSQL,
so that every web and worker node reads the same files; docs/decisions/file-store.md).

One store (FILE_STORE) for all areas — backups, uploads (the lists of imports), exports
and the outbox — each area apart: its own folder on the folder store (the folders the
portal always used), its own `area` in the database store. `get_storage(area)`.

A file is written once, as a stream of bytes; the storage returns its size and sha256,
which the file's row keeps (Backup, ImportJob, ExportRun). Every read is verified
against that checksum (backups: service.verify(); uploads and exports: local_copy()):
a file that was changed, truncated or lost is refused."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import Engine, delete, insert, select, update

from portal import clock
from portal.core.models import StoredFileChunk, StoredFileRecord
from portal.extensions import db

# `<account_id>/<name>`, or `<name>` alone in an area without account folders (outbox)
_KEY = re.compile(r"^(?:[0-9]+/)?[A-Za-z0-9._-]+$")

# The areas: kinds of files, kept apart in every store.
BACKUPS, UPLOADS, EXPORTS, OUTBOX = "backups", "uploads", "exports", "outbox"
AREAS = (BACKUPS, UPLOADS, EXPORTS, OUTBOX)


class StorageError(Exception):
    """The storage could not do what was asked (file missing, disk full, ...)."""


class FileDamaged(StorageError):
    """The stored bytes do not match their sha256 (the row's, or the one S3 keeps)."""


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
    """What every area needs of a storage (the name is the backups', who had it first).
    Keys look like `<account_id>/<name>` (the outbox: `<name>`)."""

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

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk, when the store keeps it there (the folder):
        readers that need a path (openpyxl, zipfile) use it instead of a copy."""
        return None


class LocalStorage(BackupStorage):
    """Files in a folder (BACKUP_DIR, instance/imports, ...), one subfolder per account
    (`flat`: the files right in the folder, as the outbox keeps them). A file is written
    under a temporary name and renamed when complete, so a reader never sees half a
    file."""

    def __init__(self, root: str | Path, *, flat: bool = False) -> None:
        self.root = Path(root)
        self.flat = flat

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
            raise StorageError(f"stored file {key!r} is missing") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def entries(self) -> Iterator[StoredEntry]:
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if self.flat and path.is_file() and _KEY.match(path.name):
                yield _entry(path.name, path)
            elif not self.flat and path.is_dir() and path.name.isdigit():
                for inner in path.iterdir():
                    if inner.is_file():
                        # partial files of an interrupted write are swept too
                        yield _entry(f"{path.name}/{inner.name}", inner)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


def _entry(key: str, path: Path) -> StoredEntry:
    return StoredEntry(key=key, modified_at=datetime.fromtimestamp(path.stat().st_mtime, UTC))


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise StorageError(f"invalid file key {key!r}")
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

    def __init__(self, engine: Engine, area: str = BACKUPS) -> None:
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
            raise StorageError(f"stored file {self.area}/{key} is missing")
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
                raise StorageError(f"stored file {self._key!r} lost chunk {self._seq}")
            self._seq += 1
            self._data = memoryview(data)
        n = min(len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


FOLDER, DATABASE, S3 = "folder", "postgresql", "s3"
STORES = (FOLDER, DATABASE, S3)


def folder_root(area: str) -> Path:
    """The folder of an area on the folder store: the folders the portal always used,
    so that an existing installation finds its files where they are."""
    config = current_app.config
    instance = Path(config["INSTANCE_PATH"])
    roots = {
        BACKUPS: config["BACKUP_DIR"],
        UPLOADS: instance / "imports",
        EXPORTS: instance / "exports",
        OUTBOX: config["OUTBOX_DIR"],
    }
    if area not in roots:
        raise StorageError(f"unknown file area {area!r} (one of: {', '.join(AREAS)})")
    return Path(roots[area])


def storage_named(name: str, area: str = BACKUPS) -> BackupStorage:
    """One of the stores by its FILE_STORE name, for one area."""
    if name == FOLDER:
        return LocalStorage(folder_root(area), flat=area == OUTBOX)
    if name == DATABASE:
        folder_root(area)  # an unknown area is refused here too
        return DatabaseStorage(db.engine, area)
    if name == S3:
        from portal.core.storage_s3 import S3Storage  # builds on this module: imported last

        folder_root(area)
        return S3Storage.from_config(current_app.config, area)
    raise StorageError(f"unknown file store {name!r} (one of: {', '.join(STORES)})")


class DatabaseWithFolder(BackupStorage):
    """The database store that still reads the files an installation kept in its folder
    before it moved to PostgreSQL's store: after the upgrade every file stays readable
    (restore, undo, download, an import's list, an export) until `flask portal
    move-files --to postgresql` has moved it, or its retention removes it. New files go
    to the database only."""

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

    def local_path(self, key: str) -> Path | None:
        if self.database.exists(key):
            return None
        return self.folder.local_path(key)


def get_storage(area: str = BACKUPS) -> BackupStorage:
    """The configured store (FILE_STORE: the database on PostgreSQL, else the folder)
    for one area. The database and the S3 store also read what is still in the area's
    folder (DatabaseWithFolder)."""
    name = current_app.config["FILE_STORE"]
    if name in (DATABASE, S3):
        return DatabaseWithFolder(storage_named(name, area), storage_named(FOLDER, area))
    return storage_named(name, area)


# --- reading and writing whole files ------------------------------------------------------

READ_BYTES = 1 << 20


def file_chunks(path: str | Path, size: int = READ_BYTES) -> Iterator[bytes]:
    """A local file as a stream of chunks, for write_stream (never whole in memory)."""
    with Path(path).open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def measure(storage: BackupStorage, key: str) -> tuple[int, str]:
    """Size and sha256 of the stored bytes, read as a stream."""
    digest = hashlib.sha256()
    size = 0
    with storage.open(key) as fh:
        while chunk := fh.read(READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextmanager
def local_copy(
    storage: BackupStorage, key: str, sha256: str = "", suffix: str = ""
) -> Iterator[Path]:
    """The stored file as a path on this machine, verified against `sha256`, for readers
    that need a real file (openpyxl and zipfile seek). On the folder store that is the
    file itself; on any other store a copy, streamed into a temporary file (constant
    memory) and removed when the block ends, so no node keeps people's data it was
    not asked to keep. `sha256` "" (a row from before checksums were kept): not
    verified. StorageError when the file is missing, FileDamaged when it was changed."""
    path = storage.local_path(key)
    if path is not None:
        if sha256 and _sha256_of(path) != sha256:
            raise FileDamaged(f"stored file {key!r} does not match its checksum")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="portal-file-") as folder:
        copy = Path(folder) / f"copy{suffix or Path(key).suffix}"
        digest = hashlib.sha256()
        with storage.open(key) as source, copy.open("wb") as target:
            while chunk := source.read(READ_BYTES):
                digest.update(chunk)
                target.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise FileDamaged(f"stored file {key!r} does not match its checksum")
        yield copy


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def remove_unreferenced(
    storage: BackupStorage, referenced: set[str], older_than: datetime
) -> list[str]:
    """Remove the files no row points to (a writer that died between the store and its
    row), once older than `older_than` so that a write in progress is never taken for
    one. Returns the keys removed."""
    removed = []
    for entry in list(storage.entries()):
        if entry.key not in referenced and entry.modified_at < older_than:
            storage.delete(entry.key)
            removed.append(entry.key)
    return removed


def store_file(storage: BackupStorage, key: str, path: str | Path) -> StoredFile:
    """A local file into the store, streamed."""
    return storage.write_stream(key, file_chunks(path))
