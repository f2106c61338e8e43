"""The uploaded lists of imports, in the file store (area "uploads"; on the folder store
instance/imports/<account>/, where they always were). The web process stores the list
when it is uploaded; the worker that checks and runs the import — on this machine or
another — reads it from the store. ImportJob.stored_path holds the file's key,
`<account_id>/<random>.<ext>`; file_size and file_sha256 what was stored, which every
read verifies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from portal.core import move
from portal.core.storage import (
    UPLOADS,
    BackupStorage,
    StoredFile,
    get_storage,
    local_copy,
    remove_unreferenced,
    store_file,
)
from portal.imports.models import ImportJob


def store() -> BackupStorage:
    return get_storage(UPLOADS)


def keep(account_id: int, source_path: Path, filename: str) -> StoredFile:
    """Store an uploaded file (a local file of this request) under a new key."""
    suffix = "".join(c for c in Path(filename).suffix.lower()[:6] if c.isalnum() or c == ".")
    key = f"{int(account_id)}/{uuid.uuid4().hex}{suffix}"
    return store_file(store(), key, source_path)


@contextmanager
def upload_copy(job: ImportJob) -> Iterator[Path]:
    """The import's list as a file on this machine, verified against the sha256 kept
    at the upload (storage.local_copy): the reader needs a path. StorageError when the
    file is gone, FileDamaged when it changed."""
    with local_copy(store(), job.stored_path, job.file_sha256 or "") as path:
        yield path


def remove(key: str) -> bool:
    """Delete a stored list; True when there was one."""
    if not key:
        return False
    files = store()
    existed = files.exists(key)
    files.delete(key)
    return existed


def sweep_orphans(referenced: set[str], older_than: datetime) -> int:
    """Stored lists no import points to (an upload that broke off between the store and
    its row), older than `older_than`. Returns how many were removed."""
    return len(remove_unreferenced(store(), referenced, older_than))


def _known_files(source: BackupStorage):
    columns = (ImportJob.id, ImportJob.stored_path, ImportJob.file_size, ImportJob.file_sha256)
    return move.rows_of(select(*columns).where(ImportJob.stored_path != ""), ImportJob.id)


move.register(UPLOADS, _known_files)
