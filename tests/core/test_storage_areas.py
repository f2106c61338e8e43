"""The file store per area (issue 18, point 1): one FILE_STORE for backups, uploads,
exports and the outbox, each area apart (its own folder, its own `area` rows); the
database store still reads each area's legacy folder; reads that need a path get a
verified copy, in flat memory, that does not outlive its use."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from portal.core.storage import (
    AREAS,
    CHUNK_BYTES,
    DatabaseStorage,
    DatabaseWithFolder,
    FileDamaged,
    LocalStorage,
    StorageError,
    get_storage,
    local_copy,
    storage_named,
)
from portal.extensions import db
from tests.backups.stores import damage, lose


@pytest.fixture
def folders(app, tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    for key, value in {
        "INSTANCE_PATH": instance,
        "BACKUP_DIR": tmp_path / "backups",
        "OUTBOX_DIR": tmp_path / "outbox",
    }.items():
        monkeypatch.setitem(app.config, key, str(value))
    return tmp_path


@pytest.fixture(params=["folder", "postgresql"])
def store_name(request, ctx, folders):
    return request.param


def test_the_folder_store_keeps_each_area_where_the_portal_always_kept_it(ctx, folders):
    """Existing installations find their files where they are."""
    roots = {area: storage_named("folder", area).root for area in AREAS}
    assert roots == {
        "backups": folders / "backups",
        "uploads": folders / "instance" / "imports",
        "exports": folders / "instance" / "exports",
        "outbox": folders / "outbox",
    }
    with pytest.raises(StorageError, match="unknown file area"):
        storage_named("folder", "tmp")
    with pytest.raises(StorageError, match="unknown file area"):
        storage_named("postgresql", "tmp")


def test_areas_keep_their_files_apart(store_name):
    for area in ("backups", "uploads", "exports"):
        storage_named(store_name, area).write_stream("7/same.csv", [area.encode()])
    storage_named(store_name, "outbox").write_stream("same.eml", [b"mail"])
    for area in ("backups", "uploads", "exports"):
        store = storage_named(store_name, area)
        with store.open("7/same.csv") as fh:
            assert fh.read() == area.encode()
        assert [e.key for e in store.entries()] == ["7/same.csv"]
    storage_named(store_name, "uploads").delete("7/same.csv")
    assert storage_named(store_name, "exports").exists("7/same.csv")
    assert [e.key for e in storage_named(store_name, "outbox").entries()] == ["same.eml"]


def test_the_outbox_keeps_its_mails_right_in_its_folder(ctx, folders):
    """As OUTBOX_DIR always did: `<name>.eml`, no account folder; the other areas do
    not list what lies loose in their folder."""
    outbox = storage_named("folder", "outbox")
    outbox.write_stream("20261205T120000-1.eml", [b"Subject: x\r\n\r\nbody"])
    assert (folders / "outbox" / "20261205T120000-1.eml").is_file()
    assert [e.key for e in outbox.entries()] == ["20261205T120000-1.eml"]
    (folders / "backups").mkdir()
    (folders / "backups" / "notes.txt").write_text("not a backup")
    assert list(storage_named("folder", "backups").entries()) == []


@pytest.mark.parametrize("area", ["uploads", "exports", "outbox"])
def test_the_database_store_reads_each_areas_legacy_folder(app, ctx, folders, area, monkeypatch):
    monkeypatch.setitem(app.config, "FILE_STORE", "postgresql")  # restored after the test
    key = "old.eml" if area == "outbox" else "3/old.csv"
    storage_named("folder", area).write_stream(key, [b"kept in the folder"])
    store = get_storage(area)
    assert isinstance(store, DatabaseWithFolder)
    with store.open(key) as fh:
        assert fh.read() == b"kept in the folder"
    with local_copy(store, key, hashlib.sha256(b"kept in the folder").hexdigest()) as path:
        assert path.read_bytes() == b"kept in the folder"
    assert key in {e.key for e in store.entries()}
    new = "new.eml" if area == "outbox" else "3/new.csv"
    store.write_stream(new, [b"new"])
    assert not storage_named("folder", area).exists(new)


def test_a_local_copy_is_verified_and_removed_after_use(store_name):
    store = storage_named(store_name, "uploads")
    stored = store.write_stream("4/list.csv", [b"email\r\n", b"anna@example.com\r\n"])
    with local_copy(store, "4/list.csv", stored.checksum) as path:
        assert path.read_bytes() == b"email\r\nanna@example.com\r\n"
        assert path.suffix == ".csv"  # the reader tells .xlsx from .csv by the name too
    if store_name == "folder":
        assert path.exists(), "the folder store hands out its own file"
    else:
        assert not path.exists() and not path.parent.exists(), "a copy does not stay"

    damage(store, "4/list.csv", at=2)
    with pytest.raises(FileDamaged), local_copy(store, "4/list.csv", stored.checksum):
        pass
    with local_copy(store, "4/list.csv") as path:  # no checksum kept (an old row)
        assert path.read_bytes() != b"email\r\nanna@example.com\r\n"
    lose(store, "4/list.csv")
    with pytest.raises(StorageError), local_copy(store, "4/list.csv", stored.checksum):
        pass


def test_a_large_local_copy_is_made_in_flat_memory(ctx, folders):
    store = DatabaseStorage(db.engine, "exports")
    total = 40 * 1024 * 1024
    piece = os.urandom(1 << 16)
    stored = store.write_stream("1/big.zip", (piece for _ in range(total // len(piece))))
    tracemalloc.start()
    try:
        with local_copy(store, "1/big.zip", stored.checksum) as path:
            size = path.stat().st_size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total
    assert peak < 6 * CHUNK_BYTES, peak


def test_the_database_store_hands_out_no_path(ctx, folders):
    assert DatabaseStorage(db.engine, "uploads").local_path("1/x.csv") is None
    folder = LocalStorage(Path(folders) / "u")
    folder.write_stream("1/x.csv", [b"x"])
    assert folder.local_path("1/x.csv") == Path(folders) / "u" / "1" / "x.csv"
    assert folder.local_path("1/y.csv") is None
