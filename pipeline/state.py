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
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import lock, storage
from pipeline.lock import LockConfig, LockHeld  # noqa: F401 (LockHeld: what a second scheduled run meets)
from pipeline.tokenize.shards import build_manifest, read_manifest

LOCK = "lock"
PENDING = "pending.json"
BATCHES = "batches"
INDEX = "index"


StateConfig = LockConfig


class Lock(lock.Lock):
    """The state's lock: one scheduled run at a time per state URI."""

    def __init__(self, state_uri: str, cfg: StateConfig, log=print):
        super().__init__(storage.join(state_uri, LOCK), cfg, log, name="state")


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
