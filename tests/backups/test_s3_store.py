"""The S3 store (issue 18, 1c) against a real S3-compatible server (SeaweedFS, started by
tests/s3server.py), beyond the contract every store passes (test_stores.py): the
sha256 it keeps as object metadata and checks on every read, nothing left behind by a
failed multipart write, ages from LastModified page by page, areas and installations
sharing one bucket, its errors as StorageError, `move-files --to s3`, and a 200 MB
backup streamed in and out in flat memory (peak RSS of a process of its own)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from portal import clock
from portal.backups.read import DAMAGED, BackupUnreadable, download_stream, verify
from portal.backups.retention import remove_expired
from portal.backups.snapshot import snapshot
from portal.core.storage import (
    DatabaseWithFolder,
    FileDamaged,
    LocalStorage,
    StorageError,
    get_storage,
)
from portal.core.storage_s3 import S3Storage
from portal.extensions import db
from tests.backups.conftest import build_contacts
from tests.backups.stores import damage, everything, s3_everything

MB = 1 << 20


def _pieces(total: int, piece: int = 65_536, seed: int = 7):
    rnd = __import__("random").Random(seed)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield rnd.randbytes(n)
        sent += n


def _head(store: S3Storage, key: str) -> dict:
    return store.client.head_object(Bucket=store.bucket, Key=store.object_key(key))


def test_the_sha256_is_the_objects_metadata_small_and_multipart(s3_store):
    small = s3_store.write_stream("1/small.csv.gz", [b"abc"])
    big = s3_store.write_stream("1/big.csv.gz", _pieces(12 * MB + 5))  # 3 parts of 5 MB
    for stored in (small, big):
        head = _head(s3_store, stored.key)
        assert head["Metadata"] == {"sha256": stored.checksum}
        assert head["ContentLength"] == stored.size
    assert big.checksum == hashlib.sha256(b"".join(_pieces(12 * MB + 5))).hexdigest()
    # the staging copy of the multipart upload is gone, no upload is left open
    assert everything(s3_store) == ["1/big.csv.gz", "1/small.csv.gz"]


def test_a_damaged_object_is_refused_by_the_store_itself(s3_store):
    """Even without a Backup row to compare with (an upload, an export), the store
    checks the bytes against the sha256 it wrote: bit rot, a truncated object, an
    object someone put there by hand."""
    data = b"".join(_pieces(6 * MB))
    s3_store.write_stream("2/rot.csv.gz", [data])
    damage(s3_store, "2/rot.csv.gz", at=3 * MB)
    with s3_store.open("2/rot.csv.gz") as fh:
        assert fh.read(MB) == data[:MB]  # a stream: it cannot know before the end
        with pytest.raises(FileDamaged, match="sha256"):
            fh.read()

    s3_store.write_stream("2/short.csv.gz", [b"complete"])
    name = s3_store.object_key("2/short.csv.gz")
    metadata = _head(s3_store, "2/short.csv.gz")["Metadata"]
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=name, Body=b"compl", Metadata=metadata)
    with pytest.raises(FileDamaged), s3_store.open("2/short.csv.gz") as fh:
        fh.read()

    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=s3_store.object_key("2/hand.csv.gz"), Body=b"x"
    )
    with pytest.raises(FileDamaged, match="no sha256"):
        s3_store.open("2/hand.csv.gz")


def test_a_damaged_backup_on_s3_reads_as_damaged_not_missing(account, group, s3_store):
    build_contacts(account, group, 50)
    backup = snapshot(group, reason="manual", storage=s3_store)
    db.session.commit()
    damage(s3_store, backup.storage_key, at=30)
    with pytest.raises(BackupUnreadable) as refused:
        verify(backup, s3_store)
    assert refused.value.args[0] == DAMAGED


@pytest.mark.parametrize("fails_in", ["stream", "copy"])
def test_a_failed_multipart_write_leaves_nothing(s3_store, monkeypatch, fails_in):
    """Two parts are up when the stream breaks (or the server-side copy fails): the
    upload is aborted, the staging object removed; no object, no open upload."""
    uploads_seen = []

    def chunks():
        yield from _pieces(11 * MB)
        uploads_seen.append(s3_everything(s3_store))
        if fails_in == "stream":
            raise RuntimeError("the database went away")

    if fails_in == "copy":

        def copy(*args, **kwargs):
            raise ClientError({"Error": {"Code": "InternalError"}}, "CopyObject")

        monkeypatch.setattr(s3_store.client, "copy", copy)
    with pytest.raises(RuntimeError if fails_in == "stream" else StorageError):
        s3_store.write_stream("3/half.csv.gz", chunks())
    # midway the parts were in an open upload under a staging name, not at the key
    assert len(uploads_seen[0]) == 1 and uploads_seen[0][0].startswith("upload:3/.half.csv.gz.")
    assert everything(s3_store) == []
    assert not s3_store.exists("3/half.csv.gz")


def test_entries_are_listed_page_by_page_with_last_modified(s3_store, s3_client):
    before = clock.now() - timedelta(seconds=5)
    keys = [f"{n}/f{n}.csv.gz" for n in range(1, 8)]
    for key in keys:
        s3_store.write_stream(key, [key.encode()])
    # objects that are not files of this store: another area, another installation,
    # a name no store writes
    s3_client.put_object(Bucket=s3_store.bucket, Key=f"{s3_store.base}-x/1/a.csv.gz", Body=b"")
    s3_client.put_object(Bucket=s3_store.bucket, Key=f"{s3_store.base}/1/x/notes.txt", Body=b"")
    calls = []
    paginate = s3_store.client.get_paginator("list_objects_v2").paginate

    class Pages:  # the same listing, two objects a page: continuation tokens are followed
        def paginate(self, **kwargs):
            calls.append(kwargs)
            return paginate(**kwargs, PaginationConfig={"PageSize": 2})

    client = s3_store.client
    s3_store.client = type("C", (), {"get_paginator": lambda self, name: Pages()})()
    try:
        ages = {e.key: e.modified_at for e in s3_store.entries()}
    finally:
        s3_store.client = client
    assert sorted(ages) == sorted(keys)
    assert len(calls) == 1
    for key, when in ages.items():
        assert when.tzinfo is not None and before <= when <= clock.now() + timedelta(seconds=5)
        assert when == _head(s3_store, key)["LastModified"]


def test_the_sweep_and_retention_on_s3(account, group, s3_store):
    """What test_stores.py does by ageing files, done by moving the sweep's clock (an S3
    server sets LastModified itself): a file without a row goes after a day, an expired
    backup after its 30 days, a staging object of a killed write as a stray."""
    build_contacts(account, group, 20)
    backup = snapshot(group, reason="manual", storage=s3_store)
    db.session.commit()
    stray = s3_store.write_stream(f"{account.id}/stray.csv.gz", [b"left over"])
    staging = f"{account.id}/.x.csv.gz.0123abcd.partial"  # a write killed before its copy
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=s3_store.object_key(staging), Body=b"half"
    )
    assert remove_expired(now=clock.now(), storage=s3_store) == 0
    assert everything(s3_store) == sorted([backup.storage_key, stray.key, staging])
    assert remove_expired(now=clock.now() + timedelta(days=2), storage=s3_store) == 0
    assert everything(s3_store) == [backup.storage_key]
    later = backup.expires_at + timedelta(seconds=1)
    assert remove_expired(now=later, storage=s3_store) == 1
    assert everything(s3_store) == []


def test_areas_and_installations_share_one_bucket(s3_server, s3_client, s3_store):
    uploads = S3Storage(
        s3_server.bucket, prefix=s3_store.base.rsplit("/", 1)[0], area="uploads", client=s3_client
    )
    other = S3Storage(s3_server.bucket, prefix="another-portal", client=s3_client)
    s3_store.write_stream("1/same.csv.gz", [b"a backup"])
    uploads.write_stream("1/same.csv.gz", [b"an upload"])
    with s3_store.open("1/same.csv.gz") as a, uploads.open("1/same.csv.gz") as b:
        assert (a.read(), b.read()) == (b"a backup", b"an upload")
    assert [e.key for e in uploads.entries()] == ["1/same.csv.gz"]
    assert not other.exists("1/same.csv.gz") and "1/same.csv.gz" not in {
        e.key for e in other.entries()
    }
    uploads.delete("1/same.csv.gz")
    assert s3_store.exists("1/same.csv.gz") and not uploads.exists("1/same.csv.gz")
    assert s3_store.object_key("1/same.csv.gz").endswith("/backups/1/same.csv.gz")


def test_server_errors_are_storage_errors(s3_server, s3_store):
    wrong = S3Storage(
        s3_server.bucket,
        client=type(s3_server)(
            s3_server.endpoint_url, s3_server.access_key, "wrong-secret", s3_server.bucket
        ).client(),
    )
    with pytest.raises(StorageError, match="SignatureDoesNotMatch|AccessDenied"):
        wrong.write_stream("1/x.csv.gz", [b"x"])
    with pytest.raises(StorageError):
        wrong.exists("1/x.csv.gz")
    no_bucket = S3Storage("no-such-bucket-here", client=s3_store.client)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        list(no_bucket.entries())
    with pytest.raises(StorageError, match="bucket"):
        S3Storage("", client=s3_store.client)


def test_file_store_s3_is_configured_from_the_environment(app, ctx, s3_config, monkeypatch):
    from portal.config import build_config

    with pytest.raises(ValueError, match="S3_BUCKET"):
        build_config({"FILE_STORE": "s3"})
    monkeypatch.setenv("FILE_STORE", "s3")
    monkeypatch.setenv("S3_BUCKET", "portal-files")
    monkeypatch.setenv("S3_PREFIX", "acme-portal/")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    config = build_config({})
    assert (config["FILE_STORE"], config["S3_BUCKET"], config["S3_PREFIX"]) == (
        "s3",
        "portal-files",
        "acme-portal/",
    )
    assert config["S3_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert S3Storage.from_config(config).object_key("1/a.csv.gz") == (
        "acme-portal/backups/1/a.csv.gz"
    )

    monkeypatch.setitem(app.config, "FILE_STORE", "s3")
    store = get_storage()  # the test server, from app.config (s3_config)
    assert isinstance(store, DatabaseWithFolder) and isinstance(store.database, S3Storage)
    written = store.write_stream("9/cfg.csv.gz", [b"via the environment"])
    assert store.database.exists(written.key) and not store.folder.exists(written.key)
    with store.open(written.key) as fh:
        assert fh.read() == b"via the environment"


def _move(app, *args):
    return app.test_cli_runner().invoke(args=["portal", "move-files", *args])


def test_move_files_to_s3_and_back(app, account, group, s3_config, tmp_path, monkeypatch):
    folder = LocalStorage(tmp_path / "backups")
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(folder.root))
    monkeypatch.setitem(app.config, "FILE_STORE", "folder")
    build_contacts(account, group, 40)
    made = [snapshot(group, reason="manual", storage=folder) for _ in range(2)]
    db.session.commit()
    s3 = S3Storage.from_config(app.config)

    result = _move(app, "--to", "s3")
    assert result.exit_code == 0, result.output
    assert "Moved 2 backup file(s) from the folder store to the s3 store" in result.output
    assert "Set FILE_STORE=s3" in result.output
    assert everything(folder) == [] and everything(s3) == sorted(b.storage_key for b in made)
    monkeypatch.setitem(app.config, "FILE_STORE", "s3")
    for backup in made:
        verify(backup)  # through get_storage(): from the bucket now
        assert len(b"".join(download_stream(backup)).splitlines()) == 41

    again = _move(app, "--to", "s3")  # FILE_STORE=s3: from the folder, where nothing is
    assert again.exit_code == 0 and "Moved 0 backup file(s)" in again.output
    assert "2 missing" not in again.output and "2 already there" in again.output

    back = _move(app, "--to", "postgresql", "--from", "s3")
    assert back.exit_code == 0, back.output
    assert "Moved 2 backup file(s) from the s3 store to the postgresql store" in back.output
    assert everything(s3) == []
    same = _move(app, "--to", "s3", "--from", "s3")
    assert same.exit_code != 0 and "same store" in same.output


def test_move_files_says_what_is_wrong_with_s3(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "S3_BUCKET", "")
    result = _move(app, "--to", "s3", "--from", "folder")
    assert result.exit_code == 1 and "needs a bucket (S3_BUCKET)" in result.output
    assert "Traceback" not in result.output


_RSS_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, random, sys, time
    from portal.core.storage_s3 import S3Storage, make_client
    import boto3

    endpoint, access, secret, bucket, prefix, total = sys.argv[1:7]
    total = int(total)
    client = boto3.session.Session(
        aws_access_key_id=access, aws_secret_access_key=secret
    ).client("s3", endpoint_url=endpoint, region_name="us-east-1",
             config=make_client(endpoint).meta.config)
    store = S3Storage(bucket, prefix=prefix, client=client)
    client.list_buckets()  # connections and everything imported before the baseline

    def rss():  # the peak RSS of this process image (ru_maxrss would count the fork's)
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def pieces():
        rnd, sent = random.Random(3), 0
        while sent < total:
            n = min(1 << 16, total - sent)
            yield rnd.randbytes(n)
            sent += n

    baseline = rss()
    started = time.monotonic()
    stored = store.write_stream("1/big.csv.gz", pieces())
    after_write, write_s = rss(), time.monotonic() - started
    started = time.monotonic()
    digest, size = hashlib.sha256(), 0
    with store.open("1/big.csv.gz") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    print(json.dumps({
        "baseline": baseline, "after_write": after_write, "after_read": rss(),
        "write_s": write_s, "read_s": time.monotonic() - started,
        "size": size, "read_sha256": digest.hexdigest(), "written": stored.checksum,
    }))
    """
)


def test_two_hundred_megabytes_in_and_out_in_flat_memory(s3_server, s3_store):
    """A 200 MB backup (made as it is sent, never whole in memory) goes up in 8 MB parts
    and comes back as a verified stream; the process's peak RSS grows by a few parts,
    not by the file. Run in a process of its own, so that the peak is this write's
    (VmHWM, the high-water mark of its resident memory)."""
    total = 200 * MB
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_SCRIPT,
            s3_server.endpoint_url,
            s3_server.access_key,
            s3_server.secret_key,
            s3_server.bucket,
            s3_store.base.rsplit("/", 1)[0],
            str(total),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["size"] == total and figures["read_sha256"] == figures["written"]
    grown_write = figures["after_write"] - figures["baseline"]
    grown_read = figures["after_read"] - figures["baseline"]
    print(
        f"200 MB via S3: peak RSS {figures['baseline'] / MB:.0f} MB before, "
        f"+{grown_write / MB:.1f} MB writing ({figures['write_s']:.1f} s), "
        f"+{grown_read / MB:.1f} MB after reading ({figures['read_s']:.1f} s)"
    )
    assert grown_write < 48 * MB, figures  # a part (8 MB) and its way out, not 200 MB
    assert grown_read < 48 * MB, figures
    assert everything(s3_store) == ["1/big.csv.gz"]
