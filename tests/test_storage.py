"""pipeline.storage on local disk: names are taken literally (never as URL fragments or queries), listing
survives symlink loops and reports dangling links, and credentials in a URI are refused without being echoed."""
from __future__ import annotations

import os

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from pipeline import storage
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from synthetic import HIDDEN, KEY, SECRET, TOKEN, write_docs

ODD_NAMES = ("a#b.jsonl", "c?d.jsonl", "e%23f.jsonl")
# ---------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.parametrize("form", ["path", "file"])
def test_hash_question_mark_and_percent_are_part_of_a_local_name(tmp_path, name, form):
    (tmp_path / name).write_bytes(b"bytes")
    uri = str(tmp_path / name) if form == "path" else f"file://{tmp_path}/{name}"
    fs, path = storage.resolve(uri)
    assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / name)
    assert storage.read_bytes(uri) == b"bytes"
    assert storage.list_files(uri.rsplit("/", 1)[0]) == [uri]
    assert storage.display(uri) == uri


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_hash_and_question_mark_are_part_of_an_s3_key(scheme):
    fs, path = storage.resolve(f"{scheme}://bucket/raw/a#b?c=d.jsonl")
    assert isinstance(fs, pafs.S3FileSystem) and path == "bucket/raw/a#b?c=d.jsonl"
    assert storage.resolve(f"{scheme}://bucket/mirror/http://user:x@host/p")[1] == "bucket/mirror/http://user:x@host/p"
    assert storage.display(f"{scheme}://bucket/raw/a#b?c=d.jsonl") == f"{scheme}://bucket/raw/a#b?c=d.jsonl"


@pytest.mark.parametrize("uri, user, path", [
    ("hdfs://alice@namenode:9000/raw/a#b?x.jsonl", "alice", "/raw/a#b?x.jsonl"),
    ("hdfs://namenode:9000/raw/id:1@host.jsonl", None, "/raw/id:1@host.jsonl"),
])
def test_hash_question_mark_and_at_sign_are_part_of_an_hdfs_path(monkeypatch, uri, user, path):
    made = []
    monkeypatch.setattr(pafs, "HadoopFileSystem", lambda *args, **kwargs: made.append((args, kwargs)) or "hdfs")
    assert storage.resolve(uri) == ("hdfs", path)
    assert made == [(("namenode", 9000), {"user": user})]


def test_a_file_uri_with_a_remote_host_is_refused():
    with pytest.raises(storage.StorageError, match="file:///"):
        storage.resolve("file://otherhost/data/x.jsonl")


@pytest.mark.parametrize("form", ["path", "file"])
def test_clean_keeps_every_record_of_files_named_with_hash_and_question_mark(spark, tmp_path, form):
    texts = [t for name in ODD_NAMES for t in write_docs(tmp_path / "in", name, 3)]
    inp = str(tmp_path / "in") if form == "path" else f"file://{tmp_path}/in"
    stats = stages.run("clean", spark, inp, str(tmp_path / "clean"), PipelineConfig())
    assert stats["input"] == stats["kept"] == len(texts) == 9
    kept = [t for p in (tmp_path / "clean" / "data").glob("*.parquet") for t in pq.read_table(p)["text"].to_pylist()]
    assert sorted(kept) == sorted(texts)


# ---------------------------------------------------------------------------------------------- symlinks


def test_a_symlink_back_to_an_enclosing_directory_fails_naming_the_link(tmp_path):
    write_docs(tmp_path / "in" / "sub", "a.jsonl", 1)
    os.symlink("..", tmp_path / "in" / "sub" / "loop")
    with pytest.raises(storage.StorageError, match=f"symlink loop.*{tmp_path}/in/sub/loop"):
        storage.list_files(str(tmp_path / "in"))


def test_two_directories_linking_to_each_other_fail_naming_the_link(tmp_path):
    write_docs(tmp_path / "in" / "a", "a.jsonl", 1)
    (tmp_path / "in" / "b").mkdir()
    os.symlink("../b", tmp_path / "in" / "a" / "to_b")
    os.symlink("../a", tmp_path / "in" / "b" / "to_a")
    with pytest.raises(storage.StorageError, match="symlink loop.*to_a"):
        storage.list_files(f"file://{tmp_path}/in")


def test_links_that_lead_to_each_other_fail_as_a_loop_naming_the_link(tmp_path):
    write_docs(tmp_path / "in", "a.jsonl", 1)
    os.symlink("c.jsonl", tmp_path / "in" / "b.jsonl")
    os.symlink("b.jsonl", tmp_path / "in" / "c.jsonl")
    with pytest.raises(storage.StorageError, match=f"symlink loop in the input: {tmp_path}/in/b.jsonl -> c.jsonl"):
        storage.list_files(str(tmp_path / "in"))


def test_one_directory_reached_by_two_paths_fails_as_its_files_would_be_read_twice(tmp_path):
    write_docs(tmp_path / "in" / "2024", "a.jsonl", 1)
    os.symlink("2024", tmp_path / "in" / "latest")
    with pytest.raises(storage.StorageError, match="read twice"):
        storage.list_files(str(tmp_path / "in"))


def test_a_dangling_symlink_with_an_input_name_fails_naming_it_and_its_target(tmp_path):
    write_docs(tmp_path / "in", "a.jsonl", 1)
    os.symlink(str(tmp_path / "gone.jsonl"), tmp_path / "in" / "b.jsonl")
    with pytest.raises(storage.StorageError, match=f"dangling symlink {tmp_path}/in/b.jsonl -> {tmp_path}/gone.jsonl"):
        storage.list_files(str(tmp_path / "in"), ("*.jsonl",))


def test_symlinks_to_files_and_directories_elsewhere_are_listed_under_their_link_names(tmp_path):
    write_docs(tmp_path / "elsewhere", "x.jsonl", 1)
    write_docs(tmp_path / "in", "a.jsonl", 1)
    os.symlink(str(tmp_path / "elsewhere"), tmp_path / "in" / "more")
    os.symlink(str(tmp_path / "elsewhere" / "x.jsonl"), tmp_path / "in" / "y.jsonl")
    os.symlink(str(tmp_path / "gone"), tmp_path / "in" / "README")  # dangling, but no input name: not input
    (tmp_path / "in" / "_temporary").mkdir()
    os.symlink("..", tmp_path / "in" / "_temporary" / "loop")  # hidden directories are never listed
    assert storage.list_files(str(tmp_path / "in"), ("*.jsonl",)) == [
        f"{tmp_path}/in/a.jsonl", f"{tmp_path}/in/more/x.jsonl", f"{tmp_path}/in/y.jsonl"]


# ---------------------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("uri", [
    f"s3://{KEY}:{SECRET}@bucket/raw",
    f"s3a://{KEY}:{SECRET}@bucket/raw",
    f"s3://{KEY}:{SECRET}@bucket/raw?endpoint_override=127.0.0.1:9000&scheme=http",
    f"s3://{TOKEN}@bucket/raw",
    f"hdfs://{KEY}:{SECRET}@namenode:8020/raw",
    f"gs://{KEY}:{SECRET}@bucket/raw",
    f"file://{KEY}:{SECRET}@namenode/raw",
])
def test_credentials_in_a_uri_are_refused_and_never_echoed(uri):
    with pytest.raises(storage.StorageError) as failure:
        storage.resolve(uri)
    assert not [h for h in HIDDEN if h in str(failure.value) or h in storage.display(uri)]
    assert "bucket" in str(failure.value) or "namenode" in str(failure.value)
    assert "***@" in storage.display(uri)


def test_credentials_in_the_endpoint_variable_are_refused_and_never_echoed(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{KEY}:{SECRET}@127.0.0.1:9000")
    with pytest.raises(storage.StorageError, match="AWS_ENDPOINT_URL") as failure:
        storage.resolve("s3://bucket/raw")
    assert not [h for h in HIDDEN if h in str(failure.value)]


def test_redact_hides_userinfo_and_secret_variables_but_keeps_at_signs_in_names(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecretvalue")
    text = f"failed: s3://{KEY}:{SECRET}@bucket/x and s3://bucket/id@file#3 with key envsecretvalue"
    assert storage.redact(text) == "failed: s3://***@bucket/x and s3://bucket/id@file#3 with key ***"
