"""Every file store against the same contract (issue 18, point 1): the folder, the
database and the S3 store write a stream all or nothing, read it back as a stream in flat memory,
delete (twice is fine), list by age for the sweep, and a damaged or missing file is
refused by the verified reading of the backups service. On SQLite and, with
TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import os
import tracemalloc
from datetime import timedelta

import pytest

from portal import clock
from portal.backups.read import (
    DAMAGED,
    MISSING,
    READ_BYTES,
    BackupUnreadable,
    download_stream,
    verify,
)
from portal.backups.retention import remove_expired
from portal.backups.snapshot import snapshot
from portal.core.storage import (
    CHUNK_BYTES,
    DatabaseStorage,
    DatabaseWithFolder,
    LocalStorage,
    StorageError,
)
from portal.extensions import db
from tests.backups.conftest import build_contacts
from tests.backups.stores import age, damage, everything, lose, raw_bytes
from tests.workers import TEST_KEYS


@pytest.fixture(params=["folder", "postgresql", "s3"])
def store(request, ctx, tmp_path):
    if request.param == "folder":
        return LocalStorage(tmp_path / "store")
    if request.param == "s3":  # a real S3-compatible server (tests/s3server.py)
        return request.getfixturevalue("s3_store")
    return DatabaseStorage(db.engine)


def _pieces(total: int, piece: int = 65_536, seed: int = 1):
    """`total` bytes of incompressible data in pieces, made as they are asked for."""
    rnd = __import__("random").Random(seed)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield rnd.randbytes(n)
        sent += n


def test_round_trip_of_an_empty_a_small_and_a_multi_chunk_file(store):
    empty = store.write_stream("1/empty.csv.gz", iter([]))
    assert (empty.size, empty.checksum) == (0, hashlib.sha256(b"").hexdigest())
    with store.open("1/empty.csv.gz") as fh:
        assert fh.read() == b""

    small = store.write_stream("1/small.csv.gz", [b"ab", b"", b"c\n", b"second line\n"])
    assert small.size == 16
    with store.open("1/small.csv.gz") as fh:
        assert fh.readline() == b"abc\n"
        assert list(fh) == [b"second line\n"]

    # 3.5 chunks in pieces of odd sizes: chunk borders fall inside pieces
    data = b"".join(_pieces(CHUNK_BYTES * 7 // 2, piece=99_991))
    big = store.write_stream("2/big.csv.gz", _pieces(len(data), piece=99_991))
    assert big == type(big)("2/big.csv.gz", len(data), hashlib.sha256(data).hexdigest())
    with store.open("2/big.csv.gz") as fh:
        assert fh.read(10) == data[:10]
        assert fh.read(CHUNK_BYTES) == data[10 : CHUNK_BYTES + 10]
        assert fh.read() == data[CHUNK_BYTES + 10 :]
    assert raw_bytes(store, "2/big.csv.gz") == data

    # what the backups service does with it: gzip over the stream, line by line
    text = "".join(f"row {i};Jürgen;Größ\r\n" for i in range(50_000)).encode()
    store.write_stream("3/rows.csv.gz", [gzip.compress(text)])
    with store.open("3/rows.csv.gz") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 50_000


def test_fifty_megabytes_go_in_and_out_in_flat_memory(store):
    total = 50 * 1024 * 1024
    tracemalloc.start()
    try:
        stored = store.write_stream("1/large.csv.gz", _pieces(total))
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, size = hashlib.sha256(), 0
        with store.open("1/large.csv.gz") as fh:
            while chunk := fh.read(READ_BYTES):
                digest.update(chunk)
                size += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (size, digest.hexdigest()) == (total, stored.checksum)
    # a few chunks at most, never the file (50 MB)
    assert written_peak < 6 * CHUNK_BYTES, written_peak
    assert read_peak < 6 * CHUNK_BYTES, read_peak


def test_a_write_is_all_or_nothing(store):
    seen_midway = []

    def chunks():
        yield from _pieces(CHUNK_BYTES * 5 // 2)
        # two chunks are in the store's hands: nobody sees the file yet
        seen_midway.append(store.exists("4/half.csv.gz"))
        seen_midway.append([e.key for e in store.entries() if e.key == "4/half.csv.gz"])
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        store.write_stream("4/half.csv.gz", chunks())
    assert seen_midway == [False, []]
    assert not store.exists("4/half.csv.gz")
    with pytest.raises(StorageError):
        store.open("4/half.csv.gz")
    assert everything(store) == []  # nothing left behind, not even a partial file


def test_delete_twice_exists_and_keys_stay_inside_the_store(store):
    store.write_stream("5/a.csv.gz", [b"a"])
    store.write_stream("5/b.csv.gz", [b"b"])
    assert store.exists("5/a.csv.gz") and not store.exists("5/c.csv.gz")
    store.delete("5/a.csv.gz")
    store.delete("5/a.csv.gz")  # retention may run twice
    store.delete("5/never.csv.gz")
    assert not store.exists("5/a.csv.gz") and store.exists("5/b.csv.gz")
    with pytest.raises(StorageError):
        store.open("5/a.csv.gz")
    assert everything(store) != [] and "5/a.csv.gz" not in str(everything(store))
    for key in ("../x", "1/../../x", "/etc/passwd", "a/b", "1/sub/x"):
        with pytest.raises(StorageError):
            store.open(key)
        with pytest.raises(StorageError):
            store.write_stream(key, [b"x"])


def test_entries_list_every_file_with_its_age(store):
    before = clock.now() - timedelta(seconds=5)
    store.write_stream("6/new.csv.gz", [b"new"])
    store.write_stream("7/old.csv.gz", [b"old"])
    three_days_ago = clock.now() - timedelta(days=3)
    age(store, "7/old.csv.gz", three_days_ago)
    ages = {e.key: e.modified_at for e in store.entries()}
    assert set(ages) == {"6/new.csv.gz", "7/old.csv.gz"}
    assert ages["6/new.csv.gz"] >= before
    assert abs(ages["7/old.csv.gz"] - three_days_ago) < timedelta(seconds=2)


@pytest.fixture
def backup(account, group, store):
    build_contacts(account, group, 300)
    made = snapshot(group, reason="manual", storage=store)
    db.session.commit()
    return made


def test_a_snapshot_is_read_back_verified(backup, store):
    verify(backup, store)
    lines = b"".join(download_stream(backup, store)).decode("utf-8-sig").splitlines()
    assert len(lines) == 301 and lines[0].startswith("email,")
    assert hashlib.sha256(raw_bytes(store, backup.storage_key)).hexdigest() == backup.checksum


@pytest.mark.parametrize("where", [20, -12])
def test_a_damaged_file_is_refused_by_the_verified_reading(backup, store, where):
    damage(store, backup.storage_key, at=where)
    with pytest.raises(BackupUnreadable) as refused:
        verify(backup, store)
    assert refused.value.args[0] == DAMAGED
    with pytest.raises(BackupUnreadable):
        download_stream(backup, store)


def test_a_missing_file_is_refused(backup, store):
    lose(store, backup.storage_key)
    with pytest.raises(StorageError):
        store.open(backup.storage_key)
    with pytest.raises(BackupUnreadable) as refused:
        list(download_stream(backup, store))
    assert refused.value.args[0] == MISSING


def test_retention_and_the_sweep_of_files_without_a_row(backup, store, time_machine):
    stray = store.write_stream(f"{backup.account_id}/stray.csv.gz", [b"left over"])
    remove_expired(storage=store)
    assert store.exists(stray.key) and store.exists(backup.storage_key)  # may be in writing
    age(store, stray.key, clock.now() - timedelta(days=2))
    age(store, backup.storage_key, clock.now() - timedelta(days=2))
    remove_expired(storage=store)
    assert not store.exists(stray.key) and store.exists(backup.storage_key)
    time_machine.move_to(backup.expires_at + timedelta(seconds=1), tick=False)
    assert remove_expired(storage=store) == 1
    assert everything(store) == []


def test_the_default_store_follows_the_database(app, ctx):
    from portal.config import build_config
    from portal.core.storage import get_storage

    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert isinstance(get_storage(), DatabaseWithFolder if postgres else LocalStorage)
    assert build_config({"SQLALCHEMY_DATABASE_URI": "postgresql://x@h/db", **TEST_KEYS})[
        "FILE_STORE"
    ] == (os.environ.get("FILE_STORE") or "postgresql")
    assert build_config({"SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"})["FILE_STORE"] == (
        os.environ.get("FILE_STORE") or "folder"
    )
    with pytest.raises(ValueError, match="FILE_STORE"):
        build_config({"FILE_STORE": "floppy"})


def test_the_database_store_still_reads_what_the_folder_kept(app, tmp_path):
    """An installation that moves to PostgreSQL's store keeps every backup readable
    before `move-files` ran: a key not in the database is read from the folder."""
    from portal.extensions import db

    with app.app_context():
        folder = LocalStorage(tmp_path / "backups")
        both = DatabaseWithFolder(DatabaseStorage(db.engine), folder)
        folder.write_stream("1/old.csv.gz", [b"kept in the folder"])
        assert both.exists("1/old.csv.gz")
        with both.open("1/old.csv.gz") as fh:
            assert fh.read() == b"kept in the folder"
        both.write_stream("1/new.csv.gz", [b"in the database"])
        assert not folder.exists("1/new.csv.gz")
        with both.open("1/new.csv.gz") as fh:
            assert fh.read() == b"in the database"
        assert {e.key for e in both.entries()} >= {"1/old.csv.gz", "1/new.csv.gz"}
        both.delete("1/old.csv.gz"), both.delete("1/new.csv.gz")
        assert not both.exists("1/old.csv.gz") and not both.exists("1/new.csv.gz")
        with pytest.raises(StorageError):
            both.open("1/old.csv.gz")
