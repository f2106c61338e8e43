"""The S3-compatible file store (issue 18, 1c): files as objects in one bucket, for
installations that keep their files outside the database (AWS S3, SeaweedFS, MinIO,
Ceph, Garage, ...). docs/decisions/s3-store.md tells why it works the way it does.

- Keys: `<S3_PREFIX>/<area>/<account_id>/<name>`, so several areas (backups, uploads,
  exports) and several installations share one bucket without seeing each other.
- Writing: a stream, in constant memory. A file that fits in one part (PART_BYTES) is one
  PutObject with its sha256 as object metadata. A larger one goes up as a multipart
  upload while it is hashed, under a staging name next to its key, and is then copied
  server-side to its key with the sha256 as metadata, so the object appears at its key
  whole and with its checksum, or not at all (S3 sets metadata only when an object is
  created, before the hash of a stream is known). An error aborts the upload.
- Reading: the object's body streamed (botocore's StreamingBody) through a reader that
  hashes what passes; at the end the size and sha256 must match the metadata, or the
  read fails with FileDamaged (a StorageError). A missing object is a StorageError, as
  in every store.
- entries(): ListObjectsV2, page by page, with each object's LastModified as its age.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from portal.core.storage import (
    _KEY,
    BackupStorage,
    FileDamaged,
    StorageError,
    StoredEntry,
    StoredFile,
    _check_key,
)

PART_BYTES = 8 << 20  # one part of a multipart upload: what a write holds in memory
READ_BYTES = 1 << 20  # what a read asks of the object's body at a time
SHA256 = "sha256"  # the object metadata (x-amz-meta-sha256) the checksum is kept in
_MISSING = {"NoSuchKey", "404", "NotFound"}
# CopyObject copies up to 5 GiB in one request; above that s3transfer copies in parts
_COPY = TransferConfig(multipart_threshold=5 << 30, multipart_chunksize=1 << 30, use_threads=False)


def make_client(endpoint_url: str = "", region: str = "") -> Any:
    """An S3 client with boto3's own credentials (AWS_ACCESS_KEY_ID/SECRET_ACCESS_KEY,
    ~/.aws, an instance role). Path-style addressing when an endpoint is given: most
    S3-compatible servers have no wildcard DNS for virtual-hosted buckets."""
    config = Config(
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
    )


_clients: dict[tuple, Any] = {}


def shared_client(endpoint_url: str = "", region: str = "") -> Any:
    """One client per process and endpoint (making one takes a tenth of a second); a
    forked worker makes its own, never reusing its parent's connections."""
    key = (os.getpid(), endpoint_url, region)
    if key not in _clients:
        _clients[key] = make_client(endpoint_url, region)
    return _clients[key]


class S3Storage(BackupStorage):
    """Files as objects under `<prefix>/<area>/` of one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        area: str = "backups",
        client: Any = None,
        endpoint_url: str = "",
        region: str = "",
        part_bytes: int = PART_BYTES,
    ) -> None:
        if not bucket:
            raise StorageError("the S3 store needs a bucket (S3_BUCKET)")
        self.bucket = bucket
        self.area = area
        self.base = "/".join(p for p in (prefix.strip("/"), area) if p)
        self.client = client or shared_client(endpoint_url, region)
        self.part_bytes = part_bytes

    @classmethod
    def from_config(cls, config: dict, area: str = "backups") -> S3Storage:
        return cls(
            config.get("S3_BUCKET", ""),
            prefix=config.get("S3_PREFIX", ""),
            area=area,
            endpoint_url=config.get("S3_ENDPOINT_URL", ""),
            region=config.get("S3_REGION", ""),
        )

    def object_key(self, key: str) -> str:
        """The object's name in the bucket."""
        return f"{self.base}/{_check_key(key)}"

    # --- writing ------------------------------------------------------------------------

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> StoredFile:
        name = self.object_key(key)
        digest = hashlib.sha256()
        size = 0
        part = bytearray()  # filled to exactly part_bytes, then sent as it is (no copy)
        upload: _Multipart | None = None
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while len(view):
                    room = self.part_bytes - len(part)
                    part += view[:room]
                    view = view[room:]
                    if len(part) == self.part_bytes:
                        if upload is None:
                            upload = _Multipart(self, self._staging_name(key))
                        upload.send(part)
                        part = bytearray()
            checksum = digest.hexdigest()
            if upload is None:
                with self._errors("write", key):
                    self.client.put_object(
                        Bucket=self.bucket, Key=name, Body=part, Metadata={SHA256: checksum}
                    )
            else:
                if part:
                    upload.send(part)
                upload.complete()
                self._publish(upload.name, name, checksum, key)
        except BaseException:
            if upload is not None:
                upload.discard()
            raise
        return StoredFile(key=key, size=size, checksum=checksum)

    def _staging_name(self, key: str) -> str:
        """Beside the key, named like the folder store's partial files, so that one left
        by a killed process (after its upload completed, before the copy) is listed by
        entries() and swept by its age like any file without a row."""
        account, name = _check_key(key).split("/", 1)
        return f"{self.base}/{account}/.{name}.{uuid.uuid4().hex[:8]}.partial"

    def _publish(self, staging: str, name: str, checksum: str, key: str) -> None:
        """The staged object copied to its key with its sha256 (server-side), then the
        staging copy removed."""
        with self._errors("write", key):
            self.client.copy(
                {"Bucket": self.bucket, "Key": staging},
                self.bucket,
                name,
                ExtraArgs={"Metadata": {SHA256: checksum}, "MetadataDirective": "REPLACE"},
                Config=_COPY,
            )
            self.client.delete_object(Bucket=self.bucket, Key=staging)

    # --- reading ------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        expected = answer.get("Metadata", {}).get(SHA256, "")
        if len(expected) != 64:
            answer["Body"].close()
            raise FileDamaged(f"file {key!r} has no sha256: not written by the portal's store")
        body = _VerifiedBody(answer["Body"], key, expected, answer["ContentLength"])
        return io.BufferedReader(body, buffer_size=READ_BYTES)

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            with self._errors("look up", key):
                self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except _Missing:
            return False
        return True

    def entries(self) -> Iterator[StoredEntry]:
        start = f"{self.base}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        with self._errors("list", start):
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(start) :]
                    if _KEY.match(key):  # not another area's or a stranger's object
                        yield StoredEntry(key=key, modified_at=item["LastModified"].astimezone(UTC))

    @contextmanager
    def _errors(self, action: str, key: str):
        """The S3 client's errors as the store's: a missing object or an unreachable
        server is a StorageError, as a missing file or a full disk is for the others."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise _Missing(f"file {key!r} is missing") from exc
            raise StorageError(f"S3 could not {action} {key!r}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 could not {action} {key!r}: {exc}") from exc


class _Missing(StorageError):
    """The object is not there (NoSuchKey, 404)."""


class _Multipart:
    """One multipart upload: parts sent as they fill, completed or aborted."""

    def __init__(self, store: S3Storage, name: str) -> None:
        self.store, self.name = store, name
        self.parts: list[dict] = []
        self.completed = False
        with store._errors("write", name):
            self.upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=name)[
                "UploadId"
            ]

    def send(self, data: bytes | bytearray) -> None:
        number = len(self.parts) + 1
        with self.store._errors("write", self.name):
            answer = self.store.client.upload_part(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,
            )
        self.parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def complete(self) -> None:
        with self.store._errors("write", self.name):
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self.completed = True

    def discard(self) -> None:
        """After an error: nothing of the write may stay (the parts, the staging copy).
        Best effort: what cannot be removed now is removed by the bucket's rule for
        incomplete uploads, or by the sweep (docs/deploy.md)."""
        client, bucket = self.store.client, self.store.bucket
        try:
            if self.completed:
                client.delete_object(Bucket=bucket, Key=self.name)
            else:
                client.abort_multipart_upload(Bucket=bucket, Key=self.name, UploadId=self.upload_id)
        except (ClientError, BotoCoreError):
            pass


class _VerifiedBody(io.RawIOBase):
    """An object's body as a raw stream that hashes what it hands out and, at its end,
    refuses bytes that are not the ones written (FileDamaged)."""

    def __init__(self, body: Any, key: str, expected: str, length: int) -> None:
        super().__init__()
        self._body, self._key = body, key
        self._expected, self._length = expected, length
        self._digest = hashlib.sha256()
        self._size = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._body.read(min(len(buffer), READ_BYTES))
        except (BotoCoreError, OSError) as exc:
            raise StorageError(f"file {self._key!r} could not be read to its end: {exc}") from exc
        if not data:
            self._check()
            return 0
        self._digest.update(data)
        self._size += len(data)
        n = len(data)
        buffer[:n] = data
        return n

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._size != self._length or self._digest.hexdigest() != self._expected:
            raise FileDamaged(f"file {self._key!r} does not match its sha256")

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
