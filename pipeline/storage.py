"""One way to reach every URI: local paths, file://, s3:// and hdfs://, through pyarrow.fs.

Executors read and write through this module inside `mapInArrow`, so the pipeline runs against S3 on
clusters without Spark's S3A connector. S3 settings come from the environment (AWS_ENDPOINT_URL,
AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_MAX_ATTEMPTS); credentials
are never logged, and a URI that carries some is refused without being echoed.

A URI is split at `://` only, never parsed as a URL: `#`, `?` and `%` are ordinary characters in file and
object names, and a URL parser would cut them off as a fragment or a query, or decode them.
"""
from __future__ import annotations

import errno
import fcntl
import fnmatch
import os
import posixpath
import re
import stat
import threading
from functools import lru_cache
from typing import BinaryIO, Iterable

import pyarrow.fs as pafs


# Attempts per S3 request, in the AWS SDK's standard retry mode (exponential backoff with jitter, each wait up
# to 2^n s and at most 20 s): an endpoint that is unreachable or answers 5xx for a few seconds delays a stage
# instead of failing it. The AWS SDKs' own variable AWS_MAX_ATTEMPTS overrides it.
S3_MAX_ATTEMPTS = 8


class StorageError(RuntimeError):
    pass


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.S)
# The user-info of a URI (`key:secret@`, `token@`) right after `://`. The key part stops at a '/', the secret
# may hold one (AWS secrets do), and a bucket or a host never holds ':' and '@' before its first '/', so a
# name like s3://bucket/id@file is never taken for credentials.
_USERINFO = re.compile(r"(?<=://)(?:[^\s/@:]*:[^\s@]*|[^\s/@:]+)@")
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _split(uri: str) -> tuple[str, str]:
    """(scheme, the rest, literally) of a URI; ("", uri) for a plain path."""
    m = _SCHEME.fullmatch(uri)
    return (m.group(1).lower(), m.group(2)) if m else ("", uri)


def redact(text: str) -> str:
    """`text` with the user-info of every URI in it, and the values of the secret AWS variables, replaced by
    ***: what every error path prints goes through here."""
    text = _USERINFO.sub("***@", text)
    for name in _SECRET_VARIABLES:
        if os.environ.get(name):
            text = text.replace(os.environ[name], "***")
    return text


def _credentials_refused(uri: str) -> StorageError:
    """Credentials come from the environment only, so they never reach a config, a manifest or a log."""
    return StorageError(f"{display(uri)}: a URI must not carry credentials; set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for another endpoint) instead")


def _max_attempts(value: str | None) -> int:
    if not value:
        return S3_MAX_ATTEMPTS
    if not value.isdigit() or int(value) < 1:
        raise StorageError(f"AWS_MAX_ATTEMPTS must be a positive integer, got {value!r}")
    return int(value)


def _s3_settings() -> tuple:
    """(endpoint, region, key, secret, session token, attempts) from the environment: every S3 client here is
    made from these, so all of them reach the same bucket as the same user."""
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint and "@" in endpoint:  # not echoed: a secret may hold '/', so no split of it is sure to hide it all
        raise StorageError("AWS_ENDPOINT_URL must not carry credentials; set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY instead")
    return (endpoint, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN"),
            _max_attempts(env.get("AWS_MAX_ATTEMPTS")))


def _endpoint(endpoint: str) -> tuple[str, str]:
    """(scheme, host[:port]) of an endpoint URL; https when it names none."""
    scheme, rest = _split(endpoint)
    return scheme or "https", rest.split("/", 1)[0]


@lru_cache(maxsize=8)
def _s3(endpoint: str | None, region: str, key: str | None, secret: str | None, token: str | None,
        max_attempts: int) -> pafs.S3FileSystem:
    """One client per distinct setting, so rotated credentials in the environment take effect."""
    kwargs: dict = {"region": region, "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=max_attempts)}
    if endpoint:
        kwargs["scheme"], kwargs["endpoint_override"] = _endpoint(endpoint)
        kwargs["force_virtual_addressing"] = False
    if key and secret:
        kwargs["access_key"], kwargs["secret_key"] = key, secret
        if token:
            kwargs["session_token"] = token
    return pafs.S3FileSystem(**kwargs)


@lru_cache(maxsize=8)
def _s3_client(endpoint: str | None, region: str, key: str | None, secret: str | None, token: str | None,
               max_attempts: int):
    """A botocore client with `_s3`'s settings, for the one request pyarrow cannot send: a PUT with
    `If-None-Match`. Without a key and secret both find credentials the AWS SDKs' usual way."""
    import botocore.session
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                    s3={"addressing_style": "path"} if endpoint else None)
    kwargs: dict = {"endpoint_url": "://".join(_endpoint(endpoint))} if endpoint else {}
    if key and secret:
        kwargs.update(aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)
    return botocore.session.Session().create_client("s3", region_name=region, config=config, **kwargs)


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Return (filesystem, path inside it) for a URI or a local path."""
    scheme, rest = _split(uri)
    if scheme in ("s3", "s3a"):  # s3a:// is Hadoop's name for the same bucket and key
        if _USERINFO.match(uri, len(uri) - len(rest)):  # a bucket holds neither ':' nor '@'
            raise _credentials_refused(uri)
        if not rest.split("/", 1)[0]:
            raise StorageError(f"no bucket in {display(uri)} (use s3://BUCKET/KEY)")
        return _s3(*_s3_settings()), rest.rstrip("/")  # bucket/key: the key is everything after the first '/'
    if scheme == "hdfs":
        authority, _, path = rest.partition("/")
        user, _, host_port = authority.rpartition("@")
        if ":" in user:  # hdfs://USER@HOST only names the user to act as
            raise _credentials_refused(uri)
        host, _, port = host_port.partition(":")
        if port and not port.isdigit():
            raise StorageError(f"bad port in {display(uri)}")
        return pafs.HadoopFileSystem(host or "default", int(port or 8020), user=user or None), "/" + path
    if scheme == "file":
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise StorageError(f"{display(uri)} names a host: a file:// URI is a local path, file:///ABSOLUTE/PATH")
        return pafs.LocalFileSystem(), os.path.abspath(slash + path)
    if scheme == "":
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    raise StorageError(f"unsupported URI scheme {scheme!r} in {display(uri)} (use a path, file://, s3://, s3a:// or hdfs://)")


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI without touching its scheme."""
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        return scheme + "://" + posixpath.join(rest, *parts)
    return os.path.join(uri, *parts)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def size(uri: str) -> int:
    fs, path = resolve(uri)
    return fs.get_file_info(path).size


def sizes(uris: list[str]) -> list[int]:
    """The sizes of files in bytes, in one call per file system (pyarrow runs an object store's in parallel)."""
    out = []
    for uri in uris:
        fs, path = resolve(uri)
        out.append((fs, path))
    by_fs: dict[int, list[int]] = {}
    for i, (fs, _) in enumerate(out):
        by_fs.setdefault(id(fs), []).append(i)
    result = [0] * len(uris)
    for indices in by_fs.values():
        fs = out[indices[0]][0]
        for i, info in zip(indices, fs.get_file_info([out[i][1] for i in indices])):
            result[i] = info.size
    return result


def list_files(uri: str, patterns: Iterable[str] = ("*",)) -> list[str]:
    """Files under `uri` (recursively) whose base name matches a pattern, sorted; `uri` may be one file.

    Hidden and underscore-prefixed names (_SUCCESS, _temporary, .crc) are skipped, as Hadoop does.
    """
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"input not found: {display(uri)}")
    if info.type == pafs.FileType.File:
        return [uri]
    patterns = tuple(patterns)
    prefix = uri.rstrip("/")
    if isinstance(fs, pafs.LocalFileSystem):
        rels = _local_files(path, patterns)
    else:
        rels = []
        for f in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            rel = f.path[len(path):].lstrip("/")
            if f.type == pafs.FileType.File and not _hidden(rel) and _matches(f.base_name, patterns):
                rels.append(rel)
    return sorted(prefix + "/" + rel for rel in rels)


def _hidden(rel: str) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _local_files(root: str, patterns: tuple[str, ...]) -> list[str]:
    """Paths relative to `root` of the files under it, following symlinks, each directory once.

    A link back to a directory being listed would repeat the tree without end, and a directory reached twice
    would have its files read twice; both fail naming the link. So does a dangling link with an input name:
    whatever it pointed at is input the run cannot account for, so it is not skipped in silence.
    """
    seen: dict[tuple[int, int], str] = {}
    out: list[str] = []

    def walk(directory: str, rel: str, ancestors: frozenset) -> None:
        st = os.stat(directory)
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            raise StorageError(f"symlink loop in the input: {directory} leads back to {seen[key]}")
        if key in seen:
            raise StorageError(f"{directory} is the directory {seen[key]} again: its files would be read twice "
                               "(remove one of the links)")
        seen[key] = directory
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
        for entry in children:
            if entry.name.startswith(("_", ".")):
                continue
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                mode = entry.stat().st_mode
            except FileNotFoundError:
                if entry.is_symlink() and _matches(entry.name, patterns):
                    raise StorageError(f"dangling symlink {entry.path} -> {os.readlink(entry.path)} in the input: "
                                       "restore its target or remove the link") from None
                continue
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                raise StorageError(f"symlink loop in the input: {entry.path} -> {os.readlink(entry.path)} never "
                                   "reaches a file or directory") from None
            if stat.S_ISDIR(mode):
                walk(entry.path, child_rel, ancestors | {key})
            elif stat.S_ISREG(mode) and _matches(entry.name, patterns):
                out.append(child_rel)

    walk(root, "", frozenset())
    return out


def entries(uri: str) -> list[str]:
    """Names directly under a directory (hidden ones included); [] when it does not exist or is a file."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return [f.base_name for f in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))]


def open_input(uri: str) -> BinaryIO:
    fs, path = resolve(uri)
    try:
        return fs.open_input_stream(path, compression=None)  # callers decompress by name
    except FileNotFoundError:
        raise StorageError(f"not found: {uri}") from None


def open_output(uri: str) -> BinaryIO:
    """Open for writing, creating parent directories (a no-op on object stores)."""
    fs, path = resolve(uri)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    return fs.open_output_stream(path)


def read_bytes(uri: str) -> bytes:
    with open_input(uri) as f:
        return f.read()


def _local_temporary(path: str, data: bytes) -> str:
    """`data` fsynced into a new file beside `path`, named for this process and thread, to be moved into place."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def write_bytes(uri: str, data: bytes) -> None:
    """Write a small file whole. On a local disk it goes to a temporary name, is fsynced and renamed, so a
    reader never sees half of it; object stores make a single PUT visible atomically anyway."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        os.replace(_local_temporary(path, data), path)
        return
    with open_output(uri) as f:
        f.write(data)


def write_if_absent(uri: str, data: bytes) -> bool:
    """Write a small file whole unless one is there already; False if one is. Of runs writing it at once,
    one wins, and no reader sees the file half-written: a local file is hard-linked into place from a
    complete temporary one (a link, unlike a rename, fails when the name exists), and on S3 it is a PUT with
    `If-None-Match: *`, which S3 (since August 2024) and SeaweedFS refuse with 412 while the key exists. A
    server that ignores the header overwrites instead, as a plain write does on HDFS (no create-if-absent
    through pyarrow), so a caller reads the file back to learn who won."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = _local_temporary(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    if isinstance(fs, pafs.S3FileSystem):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = path.partition("/")
        try:
            _s3_client(*_s3_settings()).put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as e:
            # 409: S3's answer when a concurrent request on the key (a delete) got in first
            if e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise StorageError(f"{display(uri)}: {e}") from None
        except BotoCoreError as e:
            raise StorageError(f"{display(uri)}: {e}") from None
        return True
    write_bytes(uri, data)
    return True


def delete_if_unchanged(uri: str, data: bytes) -> bool:
    """Delete a small file only if it still holds `data` (what the caller read); False if it is gone or
    holds something else. Of runs deleting the same file at once, one succeeds, and a file written in its
    place meanwhile is never deleted: on a local disk the read and the delete hold an exclusive flock on
    the file's directory (no other run's delete can come between them, and a new file can only be created
    where none is); on S3 the DELETE carries the ETag of the read (`If-Match`, refused with 412 once the
    object changed). Elsewhere (HDFS) the file is read again and deleted, with a short window between."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            fcntl.flock(directory, fcntl.LOCK_EX)
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except FileNotFoundError:
                return False
            if same:
                os.unlink(path)
            return same
        finally:
            os.close(directory)  # releases the flock
    if isinstance(fs, pafs.S3FileSystem):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = path.partition("/")
        client = _s3_client(*_s3_settings())
        try:
            got = client.get_object(Bucket=bucket, Key=key)
            if got["Body"].read() != data:
                return False
            client.delete_object(Bucket=bucket, Key=key, IfMatch=got["ETag"])
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "PreconditionFailed", "ConditionalRequestConflict", "404"):
                return False
            raise StorageError(f"{display(uri)}: {e}") from None
        except BotoCoreError as e:
            raise StorageError(f"{display(uri)}: {e}") from None
        return True
    try:
        if read_bytes(uri) != data:
            return False
    except StorageError:
        return False
    delete(uri)
    return True


def delete(uri: str) -> None:
    """Delete a file or a directory tree; missing is fine."""
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def move(src: str, dst: str) -> None:
    """Rename on file systems that have it; copy + delete on object stores."""
    fs, spath = resolve(src)
    _, dpath = resolve(dst)
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(dpath), exist_ok=True)
        os.replace(spath, dpath)
        return
    fs.create_dir(posixpath.dirname(dpath), recursive=True)
    fs.copy_file(spath, dpath)
    fs.delete_file(spath)


def display(uri: str) -> str:
    """A URI safe to print (no credentials in it even if a user put them there)."""
    return _USERINFO.sub("***@", uri)
