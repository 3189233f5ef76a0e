"""Shards shared by the processes of one node, so each shard's bytes leave storage once per node, not once per GPU.

NodeCache wraps the `read` callable a ShardStore takes. A shard a manifest lists is known by its sha256 and
looked for as DIR/<sha256>.tar. When it is not there, the process takes an exclusive lock on
DIR/<sha256>.lock (fcntl.flock), looks again (another process may have fetched it meanwhile), else fetches
it, checks its sha256 and writes it to a temporary name that it renames into place, so no process ever reads
half a file; the node's other processes wait on the lock, then read the file. Bytes that fail the check are
handed back but never cached, so the store's own checks decide exactly as without the cache, and the
training is the same byte for byte. After each write, cached files beyond `budget` bytes are deleted, least
recently used first (a hit refreshes a file's mtime); a file gone when a process looks for it is simply
fetched again. Lock files stay: deleting one that is held would let a second process in.

`fetched` counts the bytes this process read from storage (hits excluded); with no directory every read
goes to storage and is counted alike.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

OFF = ("none", "")


def is_remote(uri: str) -> bool:
    """An object store or a distributed file system: every byte read crosses the network."""
    return "://" in uri and not uri.startswith("file://")


def cache_directory(setting: str, manifests: Sequence[str], local_world: int) -> Path | None:
    """Where the node's processes share shards (data.node_cache), or None for no cache.

    "auto": a directory under the system temp dir named by the manifests' URIs (so two runs of the same data
    on a node share it), when any manifest is remote and several processes run on the node."""
    if setting.strip().lower() in OFF:
        return None
    if setting != "auto":
        return Path(setting)
    if local_world <= 1 or not any(is_remote(m) for m in manifests):
        return None
    key = hashlib.blake2b("\n".join(manifests).encode(), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"corpusforge-shards-{os.getuid()}-{key}"


class NodeCache:
    """A `read(uri) -> bytes` that fetches each shard listed in `shards` ({uri: sha256}) once per node."""

    def __init__(self, read: Callable[[str], bytes], directory: Path | None = None,
                 shards: Mapping[str, str] | None = None, budget: int = 4 << 30):
        self._read = read
        self.directory = directory
        self.shards = dict(shards or {})
        self.budget = budget
        self.fetched = 0  # bytes this process read from storage
        self._count = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, uri: str) -> bytes:
        sha = self.shards.get(uri)
        if self.directory is None or sha is None:
            return self._fetch(uri)
        path = self.directory / f"{sha}.tar"
        data = _hit(path)
        if data is not None:
            return data
        with open(self.directory / f"{sha}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or by the kernel if we die
            for stale in path.parent.glob(f"{path.name}.*.tmp"):  # a killed writer's: no live one holds the lock
                stale.unlink(missing_ok=True)
            data = _hit(path)
            if data is not None:
                return data
            data = self._fetch(uri)
            if hashlib.sha256(data).hexdigest() == sha:
                self._store(path, data)
            return data

    def _fetch(self, uri: str) -> bytes:
        data = self._read(uri)
        with self._count:
            self.fetched += len(data)
        return data

    def _store(self, path: Path, data: bytes) -> None:
        """Write under the shard's lock, to a temporary file then renamed. A full or read-only disk costs only
        the sharing, so it is logged, never raised."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            log.warning("node cache %s: could not keep %s (%s); reading on without it", self.directory, path.name, e)
            return
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used cached shards until the rest fit in the budget (never `keep`)."""
        files = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".tar"):
                try:
                    st = entry.stat()
                except FileNotFoundError:  # another process evicted it meanwhile
                    continue
                files.append((st.st_mtime_ns, entry.name, st.st_size))
        total = sum(size for _, _, size in files)
        for _, name, size in sorted(files):
            if total <= self.budget:
                break
            if name != keep.name:
                (self.directory / name).unlink(missing_ok=True)
                total -= size


def _hit(path: Path) -> bytes | None:
    """The cached file's bytes, refreshing its mtime, or None when it is not (or no longer) there."""
    try:
        with open(path, "rb") as f:
            with contextlib.suppress(OSError):  # a file of another user's: read it all the same
                os.utime(f.fileno())
            return f.read()
    except FileNotFoundError:
        return None
