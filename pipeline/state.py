"""Scheduled batch runs: which input files are new, one run at a time, and a manifest version per batch.

```
STATE/
  lock                         held by the running job: run id, host, pid, heartbeat (refreshed while it runs)
  pending.json                 the batch in progress: its id and files, so an interrupted run resumes it
  batches/batch-000001.json    one per committed batch (its commit point): files, stage stats, manifest version
  index/                       the dedup index every batch is deduplicated against and adds to
OUTPUT/
  batches/batch-000001/{clean,filter,dedupe,tokenize}/, pipeline.json, report.html
  manifest-000001.json ...     manifest versions: every shard of every batch committed so far
  manifest.json                the latest version (written last)
```
Input files are taken to be immutable once written (as partitioned raw data is): a file is processed once,
by path; a processed file that later changes size is reported and not processed again.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.fs as pafs

from pipeline import storage
from pipeline.tokenize.shards import build_manifest, read_manifest

LOCK = "lock"
PENDING = "pending.json"
BATCHES = "batches"
INDEX = "index"


class LockHeld(RuntimeError):
    """Another run holds the state's lock and is alive."""


@dataclass
class StateConfig:
    # A lock whose heartbeat is older than this is stale (its run died without releasing it) and is taken over.
    lock_timeout_seconds: float = 600.0
    # How often the running job refreshes its lock's heartbeat; must be well under lock_timeout_seconds.
    heartbeat_seconds: float = 30.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """One run at a time per state URI. The holder refreshes a heartbeat; a lock is stale when its heartbeat
    is older than `lock_timeout_seconds`, or at once when it was taken on this host by a process that no
    longer exists. A stale lock is reported and taken over; a live one makes `acquire` raise LockHeld.

    On a local disk the lock file is created exclusively. Object stores have no create-if-absent here, so
    there the lock is written and read back: two runs started within the same instant could both pass.
    """

    def __init__(self, state_uri: str, cfg: StateConfig, log=print):
        self.uri = storage.join(state_uri, LOCK)
        self.cfg = cfg
        self.log = log
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

    def _write(self, exclusive: bool) -> bool:
        data = json.dumps({**self.record, "heartbeat": time.time()}).encode()
        fs, path = storage.resolve(self.uri)
        if exclusive and isinstance(fs, pafs.LocalFileSystem):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        storage.write_bytes(self.uri, data)
        return True

    def _held(self) -> dict[str, Any] | None:
        try:
            return json.loads(storage.read_bytes(self.uri))
        except storage.StorageError:
            return None
        except ValueError:  # a lock written half-way by a run killed at that instant
            return {"run_id": "?", "heartbeat": 0}

    def acquire(self) -> "Lock":
        held = self._held()
        if held is not None:
            why = self.stale_reason(held)
            who = f"run {held.get('run_id')} (host {held.get('host')}, pid {held.get('pid')})"
            if why is None:
                raise LockHeld(f"{storage.display(self.uri)} is held by {who}, alive: not starting")
            self.log(f"[state] stale lock of {who}: {why}; taking it over")
            storage.delete(self.uri)
        if not self._write(exclusive=True) or self._held().get("run_id") != self.record["run_id"]:
            raise LockHeld(f"{storage.display(self.uri)} was taken by another run starting at the same time")
        self._thread = threading.Thread(target=self._beat, name="state-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.cfg.heartbeat_seconds):
            if (self._held() or {}).get("run_id") != self.record["run_id"]:
                self.log("[state] lost the lock to another run (were we paused longer than lock_timeout_seconds?)")
                return
            self._write(exclusive=False)

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


@dataclass
class Batch:
    id: str
    files: dict[str, int]  # input URI -> size in bytes when the batch was formed
    resumed: bool = False


@dataclass
class State:
    uri: str
    committed: list[dict[str, Any]] = field(default_factory=list)  # batch records, oldest first

    @classmethod
    def open(cls, uri: str) -> "State":
        root = storage.join(uri, BATCHES)
        records = []
        if storage.exists(root):
            for f in storage.list_files(root, ("batch-*.json",)):
                records.append(json.loads(storage.read_bytes(f)))
        return cls(uri, sorted(records, key=lambda r: r["id"]))

    @property
    def index_uri(self) -> str:
        return storage.join(self.uri, INDEX)

    def processed(self) -> dict[str, int]:
        return {f: n for record in self.committed for f, n in record["files"].items()}

    def pending(self) -> Batch | None:
        uri = storage.join(self.uri, PENDING)
        if not storage.exists(uri):
            return None
        data = json.loads(storage.read_bytes(uri))
        return Batch(data["id"], data["files"], resumed=True)

    def next_batch(self, input_files: list[str], log=print) -> Batch | None:
        """The interrupted batch if there is one, else the input files no committed batch processed (None
        when there are none). A new batch is recorded in pending.json before any stage runs."""
        pending = self.pending()
        if pending:
            return pending
        processed = self.processed()
        sizes = {f: storage.size(f) for f in input_files}
        for f in sorted(set(sizes) & set(processed)):
            if sizes[f] != processed[f]:
                log(f"[state] {storage.display(f)} changed size since it was processed "
                    f"({processed[f]:,} -> {sizes[f]:,} bytes); input files are processed once and not again")
        new = {f: n for f, n in sizes.items() if f not in processed}
        if not new:
            return None
        batch = Batch(f"batch-{len(self.committed) + 1:06d}", new)
        storage.write_bytes(storage.join(self.uri, PENDING),
                            json.dumps({"id": batch.id, "files": batch.files}, indent=1).encode())
        return batch

    def first_tokenizer(self, output_uri: str) -> str | None:
        """The tokenizer of the first batch that wrote shards: later batches encode with it, so every
        manifest version has one vocabulary."""
        for record in self.committed:
            if record.get("tokenizer"):
                return storage.join(output_uri, record["tokenizer"])
        return None

    def commit(self, batch: Batch, record: dict[str, Any]) -> None:
        """Record the batch as done (its commit point), then forget it as pending."""
        record = {"id": batch.id, "files": batch.files, **record}
        storage.write_bytes(storage.join(self.uri, BATCHES, f"{batch.id}.json"), json.dumps(record, indent=1).encode())
        storage.delete(storage.join(self.uri, PENDING))
        self.committed.append(record)


def batch_dir(output_uri: str, batch_id: str) -> str:
    return storage.join(output_uri, BATCHES, batch_id)


def write_manifest_version(output_uri: str, records: list[dict[str, Any]]) -> str | None:
    """Merge the manifests of the batches (records, oldest first) that wrote shards into
    OUTPUT/manifest-NNNNNN.json (N = the number of such batches) and copy it to OUTPUT/manifest.json; earlier
    versions stay as they are. Written before the batch commits, so a crash in between rewrites the same
    bytes on resume. Shard urls stay relative to the manifest: batches/<id>/tokenize/shards/... ."""
    parts = [r for r in records if r.get("manifest")]
    if not parts:
        return None
    manifests = [(r, read_manifest(storage.join(output_uri, r["manifest"]))) for r in parts]
    first, latest = manifests[0][1], manifests[-1][1]
    splits: dict[str, list[dict[str, Any]]] = {}
    for record, m in manifests:
        if m.tokenizer["sha256"] != first.tokenizer["sha256"]:
            raise ValueError(f"{record['id']} was encoded with another tokenizer than {parts[0]['id']}")
        prefix = record["manifest"].rsplit("/", 1)[0]
        for name, split in m.splits.items():
            splits.setdefault(name, []).extend(
                {**asdict(s), "url": f"{prefix}/{s.url}"} for s in split.shards)
    tokenizer = {**first.tokenizer, "path": f"{parts[0]['manifest'].rsplit('/', 1)[0]}/{first.tokenizer['path']}"}
    merged = build_manifest(tokenizer=tokenizer, dtype=first.dtype, sample_tokens=first.sample_tokens,
                            seed=first.seed, splits=splits, config=latest.config)
    data = json.dumps(merged, indent=1).encode()
    version = storage.join(output_uri, f"manifest-{len(parts):06d}.json")
    storage.write_bytes(version, data)
    storage.write_bytes(storage.join(output_uri, "manifest.json"), data)
    return version
