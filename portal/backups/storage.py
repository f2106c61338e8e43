"""Where backup files live, behind a small interface so that object storage can be
added next to the local folder.

A backup is written once, as a stream of bytes; the storage returns its size and
sha256, which the Backup row keeps. Every read is verified against that checksum
(service.verified()): a file that was changed, truncated or lost is refused."""

from __future__ import annotations

import hashlib
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
        if not _KEY.match(key) or ".." in key:
            raise StorageError(f"invalid backup key {key!r}")
        return self.root / key

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


def get_storage() -> BackupStorage:
    """The configured storage (BACKUP_DIR; an object store would be chosen here)."""
    return LocalStorage(current_app.config["BACKUP_DIR"])
