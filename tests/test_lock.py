"""The stage and state lock (pipeline/lock.py) on a local disk and on a real S3 server (SeaweedFS on
127.0.0.1): of runs taking it, or taking over a stale one, at the same instant exactly one wins, a stale
lock is taken over, and a refused create names no credential."""
from __future__ import annotations

import json
import threading
import time

import pytest

from pipeline import storage
from pipeline.lock import Lock, LockHeld
from s3server import seaweedfs

RUNS = 12


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def lock_dir(request, tmp_path, monkeypatch):
    """A directory URI to lock: local, or a fresh prefix of the S3 server, with storage pointed at it."""
    if request.param == "local":
        return str(tmp_path)
    server = request.getfixturevalue("s3")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{server.bucket}/{tmp_path.name}"


def quiet(message: str) -> None:
    pass


def assert_one_of_many_runs_wins(uri: str) -> None:
    """RUNS threads acquire the lock at `uri` at the same instant: exactly one holds it, the others raise LockHeld."""
    start, outcomes = threading.Barrier(RUNS), []

    def run():
        lock = Lock(uri, log=quiet)
        start.wait()
        try:
            outcomes.append(lock.acquire())
        except LockHeld as e:
            outcomes.append(e)

    threads = [threading.Thread(target=run) for _ in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, Lock)]
    assert len(outcomes) == RUNS and len(winners) == 1, outcomes
    assert json.loads(storage.read_bytes(uri))["run_id"] == winners[0].record["run_id"]
    winners[0].release()


def test_a_run_that_looked_before_another_took_the_lock_does_not_take_it_too(lock_dir):
    """The race the create-if-absent closes: B finds no lock, A takes it, then B writes. A plain write
    would replace A's lock and both would run; the conditional create refuses B and A's lock stays."""
    uri = storage.join(lock_dir, "_lock")
    a, b = Lock(uri, log=quiet), Lock(uri, log=quiet)

    def looked_before_a_took_it():
        del b._read  # later looks are real
        a.acquire()
        return None, None

    b._read = looked_before_a_took_it
    with pytest.raises(LockHeld, match="taken by another run starting at the same time"):
        b.acquire()
    assert json.loads(storage.read_bytes(uri))["run_id"] == a.record["run_id"]
    a.release()
    assert not storage.exists(uri)


def test_of_runs_taking_one_lock_at_the_same_instant_exactly_one_wins(lock_dir):
    for round in range(3):
        uri = storage.join(lock_dir, f"round-{round}", "_lock")
        assert_one_of_many_runs_wins(uri)


def test_a_stale_lock_is_taken_over(lock_dir):
    uri = storage.join(lock_dir, "_lock")
    storage.write_bytes(uri, json.dumps({"run_id": "dead", "host": "elsewhere", "pid": 1, "heartbeat": time.time() - 3600})
                        .encode())
    said = []
    with Lock(uri, log=said.append) as lock:
        assert json.loads(storage.read_bytes(uri))["run_id"] == lock.record["run_id"]
    assert "stale lock of run dead" in said[0] and "its last heartbeat was 3600 s ago" in said[0]
    assert not storage.exists(uri)


STALE = json.dumps({"run_id": "dead", "host": "elsewhere", "pid": 1, "heartbeat": 0}).encode()


def test_a_run_that_found_a_stale_lock_another_run_then_took_over_does_not_take_it_too(lock_dir):
    """B reads the stale lock, A takes it over, then B deletes: an unconditional delete would remove A's new
    lock and both would run; the delete of what B read is refused and A's lock stays."""
    uri = storage.join(lock_dir, "_lock")
    storage.write_bytes(uri, STALE)
    a, b = Lock(uri, log=quiet), Lock(uri, log=quiet)
    read = b._read

    def found_the_stale_lock_before_a_took_it_over():
        seen = read()
        del b._read
        a.acquire()
        return seen

    b._read = found_the_stale_lock_before_a_took_it_over
    with pytest.raises(LockHeld, match="taken over by another run at the same time"):
        b.acquire()
    assert json.loads(storage.read_bytes(uri))["run_id"] == a.record["run_id"]
    a.release()


def test_of_runs_taking_over_one_stale_lock_at_the_same_instant_exactly_one_wins(lock_dir):
    for round in range(3):
        uri = storage.join(lock_dir, f"stale-{round}", "_lock")
        storage.write_bytes(uri, STALE)
        assert_one_of_many_runs_wins(uri)


def test_a_file_is_deleted_only_while_it_holds_what_was_read(lock_dir):
    uri = storage.join(lock_dir, "file")
    storage.write_bytes(uri, b"read")
    assert not storage.delete_if_unchanged(uri, b"something else") and storage.read_bytes(uri) == b"read"
    assert storage.delete_if_unchanged(uri, b"read") and not storage.exists(uri)
    assert not storage.delete_if_unchanged(uri, b"read")  # gone


def test_an_existing_file_is_left_as_it_is_by_write_if_absent(lock_dir):
    uri = storage.join(lock_dir, "file")
    assert storage.write_if_absent(uri, b"first")
    assert not storage.write_if_absent(uri, b"second")
    assert storage.read_bytes(uri) == b"first"


@pytest.mark.slow
def test_a_conditional_put_refused_for_its_credentials_names_the_object_not_the_secret(s3, monkeypatch):
    for name, value in s3.env(secret="wrong-" + s3.secret).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(storage.StorageError) as refused:
        storage.write_if_absent(f"s3://{s3.bucket}/refused/_lock", b"{}")
    message = str(refused.value)
    assert f"s3://{s3.bucket}/refused/_lock" in message and "PutObject" in message
    assert s3.secret not in message and "wrong-" not in message
