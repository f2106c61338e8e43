"""What a test does to a store behind its back: read the raw bytes, damage them, lose
them, age them — on the folder (files), the database store (rows) and the S3 store
(objects) alike, so that the backups tests run on whichever store the database makes
the default."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.core.storage import (
    BackupStorage,
    DatabaseStorage,
    DatabaseWithFolder,
    LocalStorage,
)
from portal.core.storage_s3 import S3Storage


def _store(storage: BackupStorage) -> BackupStorage:
    """The store that holds new files (the database one of DatabaseWithFolder)."""
    return storage.database if isinstance(storage, DatabaseWithFolder) else storage


def _file_id(storage: DatabaseStorage, key: str) -> int | None:
    with storage.engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM stored_files WHERE area = :area AND key = :key"),
            {"area": storage.area, "key": key},
        ).scalar()


def raw_bytes(storage: BackupStorage, key: str) -> bytes:
    """The stored bytes as they lie (no checksum, no store reader)."""
    storage = _store(storage)
    if isinstance(storage, LocalStorage):
        return Path(storage.root, key).read_bytes()
    if isinstance(storage, S3Storage):
        answer = storage.client.get_object(Bucket=storage.bucket, Key=storage.object_key(key))
        return answer["Body"].read()
    assert isinstance(storage, DatabaseStorage)
    with storage.engine.connect() as conn:
        parts = conn.execute(
            text("SELECT data FROM stored_file_chunks WHERE file_id = :id ORDER BY seq"),
            {"id": _file_id(storage, key)},
        ).scalars()
        return b"".join(bytes(p) for p in parts)


def damage(storage: BackupStorage, key: str, at: int = -12) -> None:
    """Flip one bit of the stored bytes (at an offset from the start, or the end)."""
    storage = _store(storage)
    if isinstance(storage, LocalStorage):
        path = Path(storage.root, key)
        data = bytearray(path.read_bytes())
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        return
    if isinstance(storage, S3Storage):
        # bit rot on the server: other bytes under the same metadata (the written sha256)
        name = storage.object_key(key)
        answer = storage.client.get_object(Bucket=storage.bucket, Key=name)
        data = bytearray(answer["Body"].read())
        data[at] ^= 0x01
        storage.client.put_object(
            Bucket=storage.bucket, Key=name, Body=bytes(data), Metadata=answer["Metadata"]
        )
        return
    assert isinstance(storage, DatabaseStorage)
    file_id = _file_id(storage, key)
    with storage.engine.begin() as conn:
        chunks = [
            (seq, bytearray(data))
            for seq, data in conn.execute(
                text("SELECT seq, data FROM stored_file_chunks WHERE file_id = :id ORDER BY seq"),
                {"id": file_id},
            )
        ]
        offset = at if at >= 0 else sum(len(d) for _, d in chunks) + at
        for seq, data in chunks:
            if offset < len(data):
                data[offset] ^= 0x01
                conn.execute(
                    text(
                        "UPDATE stored_file_chunks SET data = :d WHERE file_id = :id AND seq = :s"
                    ),
                    {"d": bytes(data), "id": file_id, "s": seq},
                )
                return
            offset -= len(data)


def lose(storage: BackupStorage, key: str) -> None:
    """The bytes go missing (a deleted file, rows removed by hand)."""
    storage = _store(storage)
    if isinstance(storage, LocalStorage):
        Path(storage.root, key).unlink()
        return
    if isinstance(storage, S3Storage):
        storage.client.delete_object(Bucket=storage.bucket, Key=storage.object_key(key))
        return
    assert isinstance(storage, DatabaseStorage)
    file_id = _file_id(storage, key)
    with storage.engine.begin() as conn:
        conn.execute(text("DELETE FROM stored_file_chunks WHERE file_id = :id"), {"id": file_id})
        conn.execute(text("DELETE FROM stored_files WHERE id = :id"), {"id": file_id})


def age(storage: BackupStorage, key: str, when: datetime) -> None:
    """Make the stored file look written at `when` (what the sweep of files without a
    row goes by)."""
    storage = _store(storage)
    if isinstance(storage, LocalStorage):
        os.utime(Path(storage.root, key), (when.timestamp(), when.timestamp()))
        return
    if isinstance(storage, S3Storage):
        pytest.skip(
            "an S3 server sets an object's LastModified itself; test_s3_store.py tests the "
            "ages and the sweep on S3 by moving the sweep's clock instead"
        )
    assert isinstance(storage, DatabaseStorage)
    from portal.core.models import StoredFileRecord

    with storage.engine.begin() as conn:
        conn.execute(
            StoredFileRecord.__table__.update()
            .where(StoredFileRecord.area == storage.area, StoredFileRecord.key == key)
            .values(created_at=when)
        )


def everything(storage: BackupStorage) -> list[str]:
    """All that lies in the store, also what its interface does not list: files of any
    name in the folder, and in the database every file row and every chunk row."""
    storage = _store(storage)
    if isinstance(storage, LocalStorage):
        root = Path(storage.root)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    if isinstance(storage, S3Storage):
        return s3_everything(storage)
    assert isinstance(storage, DatabaseStorage)
    with storage.engine.connect() as conn:
        files = [f"file:{k}" for k in conn.execute(text("SELECT key FROM stored_files")).scalars()]
        chunks = conn.execute(text("SELECT file_id, seq FROM stored_file_chunks")).all()
    return sorted(files + [f"chunk:{f}/{s}" for f, s in chunks])


def s3_everything(storage: S3Storage) -> list[str]:
    """Every object under the store's prefix (of any name) and every multipart upload
    begun there and neither completed nor aborted (parts a bucket keeps, and bills)."""
    start = f"{storage.base}/"
    objects = [
        item["Key"][len(start) :]
        for page in storage.client.get_paginator("list_objects_v2").paginate(
            Bucket=storage.bucket, Prefix=start
        )
        for item in page.get("Contents", ())
    ]
    uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=start)
    pending = [f"upload:{u['Key'][len(start) :]}" for u in uploads.get("Uploads", ())]
    return sorted(objects + pending)
