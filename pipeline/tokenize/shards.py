"""Token shards: pack documents into fixed-size samples and write/read them as deterministic WebDataset tars.

The format is the contract in docs/DESIGN.md ("Token shards"). A shard is a ustar tar whose members are
sorted by name: for each sample `KEY.json` ({"ids", "spans"}) then `KEY.tokens.npy` (a 1-D array in
`np.save` format), KEY = shard * 10**6 + index as 12 digits. Every header field that could vary between
machines (mtime, owner, mode) is fixed, so the same samples always give the same bytes and sha256.
A plain `webdataset.WebDataset(url, shardshuffle=False).decode()` reads these shards with no project code.

Since schema version 2 a sample's JSON also records, per piece, its document's language (`langs`, the
filter's `lang`, "unknown" where a document has none) and UTF-8 text bytes (`text_bytes`, counted on the
document's first piece, 0 on the pieces that continue it), so a reader can attribute every token's loss
to its document and sum exact bits per byte by language. Version 1 shards stay readable: `piece_languages`
gives their pieces the language "unknown".
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # version 1 samples carry no langs / text_bytes
UNKNOWN_LANG = "unknown"  # the language of a document the filter gave none (or of any v1 sample's piece)
SAMPLES_PER_SHARD_KEY = 10**6
TOKENS_SUFFIX = "tokens.npy"
META_SUFFIX = "json"


class ShardError(ValueError):
    """A shard or manifest that does not match the format or its recorded checksum."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits, else uint32 (the manifest records which)."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def sample_key(shard_index: int, i: int) -> str:
    if not 0 <= i < SAMPLES_PER_SHARD_KEY:
        raise ShardError(f"sample index {i} does not fit a shard key (max {SAMPLES_PER_SHARD_KEY - 1})")
    return f"{shard_index * SAMPLES_PER_SHARD_KEY + i:012d}"


def pack_documents(
    docs: Iterable[tuple[str, np.ndarray] | tuple[str, np.ndarray, str | None, int]], sample_tokens: int
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Concatenate documents (each already ending with EOS) and cut the stream into samples of exactly
    `sample_tokens` tokens; only the last sample may be shorter. A document split across samples appears
    in each of them, with the span of its piece, so `tokens[start:end]` of every span rebuilds it.

    Documents given as (id, tokens, lang, text_bytes) also get `langs` and `text_bytes` per piece (module
    docstring); (id, tokens) gives the version 1 sample."""
    if sample_tokens <= 0:
        raise ValueError("sample_tokens must be positive")
    pieces: list[np.ndarray] = []
    meta: dict[str, list] = {}
    fill = 0
    for doc in docs:
        doc_id, tokens = doc[0], np.asarray(doc[1])
        if not meta:
            meta = {"ids": [], "spans": []} if len(doc) == 2 else {"ids": [], "spans": [], "langs": [], "text_bytes": []}
        pos = 0
        while pos < len(tokens):
            take = min(sample_tokens - fill, len(tokens) - pos)
            pieces.append(tokens[pos : pos + take])
            meta["ids"].append(doc_id)
            meta["spans"].append([fill, fill + take])
            if "langs" in meta:
                meta["langs"].append(doc[2] or UNKNOWN_LANG)
                meta["text_bytes"].append(int(doc[3]) if pos == 0 else 0)
            fill += take
            pos += take
            if fill == sample_tokens:
                yield np.concatenate(pieces), meta
                pieces, fill = [], 0
                meta = {k: [] for k in meta}
    if fill:
        yield np.concatenate(pieces), meta


def piece_languages(meta: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    """(lang, start, end, text_bytes) of each piece of a sample; a version 1 sample's pieces are "unknown"
    with 0 text bytes (their documents' bytes are known only per shard, from the manifest)."""
    n = len(meta["spans"])
    langs = meta.get("langs") or [UNKNOWN_LANG] * n
    text_bytes = meta.get("text_bytes") or [0] * n
    return [(lang, int(a), int(b), int(t)) for lang, (a, b), t in zip(langs, meta["spans"], text_bytes)]


def shard_documents(samples: Iterable[tuple[str, np.ndarray, dict[str, Any]]]) -> dict[str, np.ndarray]:
    """Every document of one shard (samples as `iter_shard` yields them), its pieces joined in order, EOS
    included: the inverse of `pack_documents`."""
    pieces: dict[str, list[np.ndarray]] = {}
    for _, tokens, meta in samples:
        for doc_id, (start, end) in zip(meta["ids"], meta["spans"]):
            pieces.setdefault(doc_id, []).append(tokens[start:end])
    return {doc_id: np.concatenate(p) for doc_id, p in pieces.items()}


class _HashingWriter:
    """Counts and hashes bytes on their way to `fileobj`, so a shard's sha256 costs no second read."""

    def __init__(self, fileobj: BinaryIO):
        self.fileobj = fileobj
        self.sha = hashlib.sha256()
        self.nbytes = 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.nbytes += len(data)
        self.fileobj.write(data)
        return len(data)

    def tell(self) -> int:
        return self.nbytes

    def flush(self) -> None:
        self.fileobj.flush()


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def encode_tokens(tokens: np.ndarray, dtype: np.dtype | str) -> bytes:
    dtype = np.dtype(dtype)
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ShardError(f"tokens must be 1-D, got shape {tokens.shape}")
    if tokens.size and (tokens.min() < 0 or tokens.max() > np.iinfo(dtype).max):
        raise ShardError(f"token ids out of range for {dtype}")
    buf = io.BytesIO()
    np.save(buf, tokens.astype(dtype.newbyteorder("<"), copy=False), allow_pickle=False)
    return buf.getvalue()


def write_shard(
    fileobj: BinaryIO, samples: Iterable[tuple[np.ndarray, dict[str, Any]]], shard_index: int, dtype: np.dtype | str
) -> dict[str, Any]:
    """Write one shard to `fileobj` and return {"samples", "tokens", "bytes", "sha256"} of what was written."""
    out = _HashingWriter(fileobj)
    n_samples = n_tokens = 0
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, (tokens, meta) in enumerate(samples):
            key = sample_key(shard_index, i)
            meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            npy = encode_tokens(tokens, dtype)
            tar.addfile(_member(f"{key}.{META_SUFFIX}", len(meta_bytes)), io.BytesIO(meta_bytes))
            tar.addfile(_member(f"{key}.{TOKENS_SUFFIX}", len(npy)), io.BytesIO(npy))
            n_samples += 1
            n_tokens += len(tokens)
    out.flush()
    return {"samples": n_samples, "tokens": n_tokens, "bytes": out.nbytes, "sha256": out.sha.hexdigest()}


def _check_member_name(name: str, shard: str) -> None:
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise ShardError(f"{shard}: unsafe member name {name!r}")


@functools.lru_cache(maxsize=64)
def _npy_header(header: bytes) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, payload offset) of an .npy header; cached because a shard repeats a few headers."""
    f = io.BytesIO(header)
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read(f)
    return shape, dtype, f.tell()


def _npy_array(data: memoryview, where: str) -> np.ndarray:
    """Decode `np.save` bytes without copying the payload (the shard bytes stay the backing buffer)."""
    try:
        major = data[6]
        length = (int.from_bytes(data[8:10], "little") + 10) if major == 1 else (int.from_bytes(data[8:12], "little") + 12)
        shape, dtype, offset = _npy_header(bytes(data[:length]))
    except (ValueError, IndexError) as e:
        raise ShardError(f"{where}: not a .npy array ({e})") from None
    if len(shape) != 1 or dtype.kind != "u" or dtype.hasobject:
        raise ShardError(f"{where}: expected a 1-D unsigned array, got {dtype} {shape}")
    return np.frombuffer(data, dtype=dtype, count=shape[0], offset=offset)


def iter_shard(data: bytes, name: str = "shard") -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
    """Yield (key, tokens, meta) for every sample of the shard held in `data`, in file order.

    The token arrays are read-only views into `data`. Member names with `..`, absolute paths, members
    other than the two per sample, or a sample missing one of them raise ShardError naming the shard."""
    view = memoryview(data)
    pending_key: str | None = None
    meta: dict[str, Any] | None = None
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        for info in tar:
            _check_member_name(info.name, name)
            if not info.isreg():
                raise ShardError(f"{name}: member {info.name!r} is not a regular file")
            key, _, suffix = info.name.partition(".")
            if info.offset_data + info.size > len(data):
                raise ShardError(f"{name}: truncated ({info.name} needs {info.offset_data + info.size} bytes, "
                                 f"the file has {len(data)})")
            payload = view[info.offset_data : info.offset_data + info.size]
            if suffix == META_SUFFIX:
                if pending_key is not None:
                    raise ShardError(f"{name}: sample {pending_key} has no {TOKENS_SUFFIX}")
                pending_key, meta = key, json.loads(bytes(payload))
            elif suffix == TOKENS_SUFFIX:
                if key != pending_key:
                    raise ShardError(f"{name}: {info.name} does not follow {key}.{META_SUFFIX}")
                yield key, _npy_array(payload, f"{name}:{info.name}"), meta
                pending_key, meta = None, None
            else:
                raise ShardError(f"{name}: unexpected member {info.name!r}")
    except tarfile.TarError as e:
        raise ShardError(f"{name}: not a readable tar ({e})") from None
    if pending_key is not None:
        raise ShardError(f"{name}: sample {pending_key} has no {TOKENS_SUFFIX}")


def verify_shard(data: bytes, expected_sha256: str, name: str) -> None:
    """Raise ShardError naming the shard when its bytes do not hash to the manifest's sha256."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
        raise ShardError(f"shard {name}: sha256 mismatch (manifest {expected_sha256}, file {got}); "
                         "the shard is corrupt or was rewritten after the manifest")


# ---------------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ShardInfo:
    url: str  # relative to the manifest
    samples: int
    tokens: int
    bytes: int
    sha256: str
    documents: int
    text_bytes: int


@dataclass(frozen=True)
class Split:
    shards: list[ShardInfo]
    samples: int
    tokens: int
    documents: int
    text_bytes: int


@dataclass(frozen=True)
class Manifest:
    uri: str  # where it was read from; shard urls resolve against its directory
    schema_version: int
    pipeline_version: str
    tokenizer: dict[str, Any]
    dtype: str
    sample_tokens: int
    seed: int
    splits: dict[str, Split]
    config: dict[str, Any] = field(default_factory=dict)

    def resolve(self, relative: str) -> str:
        """The URI of a file named relative to the manifest (a shard url or the tokenizer path)."""
        _check_relative(relative, self.uri)
        base = self.uri.rsplit("/", 1)[0] if "/" in self.uri else "."
        return f"{base}/{relative}"

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer["eos_id"])


def _check_relative(url: str, manifest: str) -> None:
    if not url or url.startswith("/") or "://" in url or ".." in url.split("/"):
        raise ShardError(f"{manifest}: path {url!r} must be relative to the manifest and stay below it")


def build_manifest(
    *,
    tokenizer: dict[str, Any],
    dtype: np.dtype | str,
    sample_tokens: int,
    seed: int,
    splits: dict[str, list[dict[str, Any]]],
    config: dict[str, Any] | None = None,
    pipeline_version: str | None = None,
) -> dict[str, Any]:
    """The manifest.json object. `splits` maps split name to its shard records: write_shard's result plus
    `url` (relative to the manifest), `documents` and `text_bytes`; split totals are summed here."""
    if pipeline_version is None:
        from pipeline import __version__ as pipeline_version
    for key in ("path", "sha256", "vocab_size", "eos_id"):
        if key not in tokenizer:
            raise ShardError(f"manifest tokenizer needs {key!r}")
    out_splits = {}
    for split, shards in splits.items():
        records = []
        for s in shards:
            _check_relative(s["url"], "manifest")
            records.append({k: s[k] for k in ("url", "samples", "tokens", "bytes", "sha256", "documents", "text_bytes")})
        out_splits[split] = {
            "shards": records,
            **{k: sum(r[k] for r in records) for k in ("samples", "tokens", "documents", "text_bytes")},
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "pipeline_version": pipeline_version,
        "tokenizer": dict(tokenizer),
        "dtype": np.dtype(dtype).name,
        "sample_tokens": int(sample_tokens),
        "seed": int(seed),
        "splits": out_splits,
        "config": dict(config or {}),
    }


def _default_read(uri: str) -> bytes:
    from pipeline import storage

    return storage.read_bytes(uri)


def parse_manifest(data: dict[str, Any], uri: str) -> Manifest:
    if data.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise ShardError(f"{uri}: unsupported manifest schema_version {data.get('schema_version')!r}")
    try:
        splits = {
            name: Split(
                shards=[ShardInfo(**s) for s in split["shards"]],
                **{k: int(split[k]) for k in ("samples", "tokens", "documents", "text_bytes")},
            )
            for name, split in data["splits"].items()
        }
        manifest = Manifest(
            uri=uri,
            schema_version=data["schema_version"],
            pipeline_version=str(data["pipeline_version"]),
            tokenizer=dict(data["tokenizer"]),
            dtype=np.dtype(data["dtype"]).name,
            sample_tokens=int(data["sample_tokens"]),
            seed=int(data["seed"]),
            splits=splits,
            config=dict(data.get("config") or {}),
        )
    except (KeyError, TypeError) as e:
        raise ShardError(f"{uri}: malformed manifest ({e!r})") from None
    for split in manifest.splits.values():
        for s in split.shards:
            _check_relative(s.url, uri)
    return manifest


def read_manifest(uri: str, read: Callable[[str], bytes] = _default_read) -> Manifest:
    """Read manifest.json from a path or URI; `read` fetches bytes (pipeline.storage by default: local,
    file://, s3://, hdfs://)."""
    return parse_manifest(json.loads(read(uri)), uri)

