"""One writer at a time per directory: a lock file with its owner and a heartbeat.

Scheduled runs hold one on their state directory, and every stage holds one on its output directory from
`begin` to `commit`, so two runs started on the same output cannot interleave their files.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline import storage


class LockHeld(RuntimeError):
    """Another run holds the lock and is alive."""


@dataclass
class LockConfig:
    # A lock whose heartbeat is older than this is stale (its run died without releasing it) and is taken over.
    lock_timeout_seconds: float = 600.0
    # How often the running job refreshes its lock's heartbeat; must be well under lock_timeout_seconds.
    heartbeat_seconds: float = 30.0

    def __post_init__(self):
        if not 0 < self.heartbeat_seconds < self.lock_timeout_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds:g}) must be positive and under "
                f"lock_timeout_seconds ({self.lock_timeout_seconds:g})"
            )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """One run at a time holds the lock file `uri`. The holder refreshes a heartbeat; a lock is stale when its heartbeat
    is older than `lock_timeout_seconds`, or at once when it was taken on this host by a process that no
    longer exists. A stale lock is reported and taken over; a live one makes `acquire` raise LockHeld.

    The lock file is created only if absent (`storage.write_if_absent`: O_EXCL on a local disk, a PUT with
    `If-None-Match: *` on S3), so of runs starting at the same instant one wins and the others raise
    LockHeld. It is then read back, which decides where the create cannot be conditional (HDFS, an
    S3-compatible server that ignores the header: there two runs starting within the same instant could
    both pass). Heartbeats overwrite it unconditionally.
    """

    def __init__(self, uri: str, cfg: LockConfig | None = None, log=print, name: str = "lock"):
        self.uri = uri
        self.cfg = cfg or LockConfig()
        self.name = name
        self.log = lambda message: log(f"[{name}] {message}")
        self.record = {"run_id": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                       "started": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def stale_reason(self, held: dict[str, Any]) -> str | None:
        age = time.time() - float(held.get("heartbeat", 0))
        if age > self.cfg.lock_timeout_seconds:
            return f"its last heartbeat was {age:.0f} s ago (lock_timeout_seconds={self.cfg.lock_timeout_seconds:g})"
        if held.get("host") == self.record["host"] and not _pid_alive(int(held.get("pid", -1))):
            return f"process {held.get('pid')} no longer runs on this host"
        return None

    def _data(self) -> bytes:
        return json.dumps({**self.record, "heartbeat": time.time()}).encode()

    def _read(self) -> tuple[bytes | None, dict[str, Any] | None]:
        """The lock file's bytes and record; (None, None) when there is none."""
        try:
            raw = storage.read_bytes(self.uri)
        except (storage.StorageError, OSError):  # OSError: an object store's read cut by a concurrent delete
            return None, None
        try:
            return raw, json.loads(raw)
        except ValueError:  # not a lock file written whole (every writer here writes it whole): stale
            return raw, {"run_id": "?", "heartbeat": 0}

    def _held(self) -> dict[str, Any] | None:
        return self._read()[1]

    def acquire(self) -> "Lock":
        raw, held = self._read()
        if held is not None:
            why = self.stale_reason(held)
            who = f"run {held.get('run_id')} (host {held.get('host')}, pid {held.get('pid')})"
            if why is None:
                raise LockHeld(f"{storage.display(self.uri)} is held by {who}, alive: not starting")
            self.log(f"stale lock of {who}: {why}; taking it over")
            # only the stale lock read above: another run taking it over at the same time may have written its own
            if not storage.delete_if_unchanged(self.uri, raw):
                raise LockHeld(f"{storage.display(self.uri)} was taken over by another run at the same time")
        # The read-back decides, also when the create could not be conditional, or when a retried PUT's
        # first attempt had landed and its retry was refused.
        storage.write_if_absent(self.uri, self._data())
        if (self._held() or {}).get("run_id") != self.record["run_id"]:
            raise LockHeld(f"{storage.display(self.uri)} was taken by another run starting at the same time")
        self._thread = threading.Thread(target=self._beat, name=f"{self.name}-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.cfg.heartbeat_seconds):
            if (self._held() or {}).get("run_id") != self.record["run_id"]:
                self.log("lost the lock to another run (were we paused longer than lock_timeout_seconds?)")
                return
            storage.write_bytes(self.uri, self._data())

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if (self._held() or {}).get("run_id") == self.record["run_id"]:
            storage.delete(self.uri)

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


