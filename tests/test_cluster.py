"""The pipeline on a real standalone Spark cluster (master + worker on 127.0.0.1) gives the same bytes as local[2].

The executors get the project only from `--py-files build/corpusforge.zip`, as on a real cluster: the jobs
are submitted from a directory outside the repo, and a probe job checks from inside a task that `pipeline`
is imported from the zip.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from spark_cluster import standalone_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SUBMIT_TIMEOUT = 300
SETTINGS = ["tokenize.vocab_size=512", "tokenize.sample_tokens=256", "tokenize.shard_bytes=20000",
            "tokenize.val_fraction=0.1", "tokenize.min_frequency=1"]
# Plain English words, drawn at random into sentences: varied enough to pass the repetition filters, with
# enough stop words to be English for the language identifier and the Gopher stop-word rule.
WORDS = """river garden window market teacher village mountain letter engine harbour library morning station
bridge forest kitchen winter summer doctor student painter farmer captain island valley castle meadow bakery
journey museum theatre orchard lantern compass blanket ladder pencil ribbon candle thunder silver copper marble
canvas harvest festival carried painted visited opened watched followed repaired described remembered gathered
quiet old bright narrow famous gentle crowded distant careful patient curious modern people children evening
weather answer question story history science music picture paper water country family friend mother father
brother sister city road house school field garden table chair door wall floor light sound colour voice
walked talked asked thought found began learned played worked lived moved turned helped started showed
""".split()
STOP = "the of and to in that it was for on with as his they at be this from had by not but what all were we when".split()

PROBE = """\
import json, sys
from pyspark.sql import SparkSession

def where(_):
    import pipeline, pipeline.stages.clean
    return [(pipeline.__file__, pipeline.stages.clean.__file__)]

sc = SparkSession.builder.appName("corpusforge-probe").getOrCreate().sparkContext
print("PROBE " + json.dumps(sorted(set(sc.parallelize(range(4), 4).mapPartitions(where).collect()))))
"""


def sentence(rng: random.Random) -> str:
    """One English-looking sentence of 10-18 words, about a third of them stop words."""
    words = [rng.choice(STOP) if rng.random() < 0.35 else rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
    return " ".join(words).capitalize() + "."


def write_corpus(raw: Path, n: int = 300) -> None:
    """~300 documents in two JSONL.gz files: exact duplicates, near duplicates (one word changed) and a few
    one-sentence documents the quality filter drops."""
    rng = random.Random(7)
    docs = []
    for i in range(n - 35):
        paragraphs = ["\n".join(sentence(rng) for _ in range(4)) for _ in range(3)]
        docs.append({"id": f"doc-{i:04d}", "text": "\n\n".join(paragraphs), "source": "synthetic"})
    for j in range(15):
        docs.append({**docs[j * 3], "id": f"exact-{j:02d}"})
    for j in range(15):
        words = docs[100 + j]["text"].split(" ")
        words[len(words) // 2] = "lighthouse"
        docs.append({"id": f"near-{j:02d}", "text": " ".join(words), "source": "synthetic"})
    for j in range(5):
        docs.append({"id": f"short-{j:02d}", "text": sentence(rng), "source": "synthetic"})
    rng.shuffle(docs)
    raw.mkdir(parents=True)
    for k, part in enumerate((docs[: n // 2], docs[n // 2 :])):
        with gzip.open(raw / f"docs-{k}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(d) + "\n" for d in part)


def build_pyfiles(dest: Path) -> Path:
    """`make pyfiles` with this interpreter, copied out at once so a concurrent build cannot change it."""
    subprocess.run(["make", "-s", "-C", str(REPO), "pyfiles", f"PYTHON={sys.executable}"], check=True,
                   capture_output=True, text=True)
    zip_path = dest / "corpusforge.zip"
    shutil.copyfile(REPO / "build" / "corpusforge.zip", zip_path)
    return zip_path


def submit(master: str, script: Path, args: list[str], zip_path: Path, cwd: Path) -> str:
    """spark-submit from outside the repo; executors see the project only through --py-files."""
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    cmd = [str(VENV_BIN / "spark-submit"), "--master", master, "--py-files", str(zip_path),
           "--conf", f"spark.executorEnv.PYSPARK_PYTHON={sys.executable}",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
           str(script), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT)
    errors = "\n".join(line for line in proc.stderr.splitlines() if " INFO " not in line)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{errors[-5000:]}"
    return proc.stdout


def files_under(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file, so a mismatch names the differing files."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pyfiles_zip(tmp_path_factory) -> Path:
    return build_pyfiles(tmp_path_factory.mktemp("pyfiles"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, pyfiles_zip):
    """One pipeline run on local[2] and one on the cluster, same input and settings, plus the probe's answer."""
    if shutil.which("java") is None:
        pytest.skip("java not found: a standalone Spark cluster needs a JVM")
    tmp = tmp_path_factory.mktemp("cluster")
    write_corpus(tmp / "raw")
    (tmp / "probe.py").write_text(PROBE)
    cwd = tmp / "submit"
    cwd.mkdir()
    job = REPO / "jobs" / "pipeline.py"
    args = [a for s in SETTINGS for a in ("--set", s)]
    submit("local[2]", job, ["--input", str(tmp / "raw"), "--output", str(tmp / "local"), *args], pyfiles_zip, cwd)
    with standalone_cluster(log_dir=tmp / "cluster-logs") as master:
        probe = submit(master, tmp / "probe.py", [], pyfiles_zip, cwd)
        submit(master, job, ["--input", str(tmp / "raw"), "--output", str(tmp / "cluster"), *args], pyfiles_zip, cwd)
    line = next(line for line in probe.splitlines() if line.startswith("PROBE "))
    return {"local": tmp / "local", "cluster": tmp / "cluster", "probe": json.loads(line[len("PROBE "):])}


def test_pyfiles_zip_holds_the_packages(pyfiles_zip):
    names = set(zipfile.ZipFile(pyfiles_zip).namelist())
    assert {"pipeline/__init__.py", "pipeline/cli.py", "trainer/__init__.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_executors_import_the_project_from_the_pyfiles_zip(runs):
    assert runs["probe"], "the probe job returned nothing"
    for package_file, module_file in runs["probe"]:
        assert "corpusforge.zip" in package_file and "corpusforge.zip" in module_file, (package_file, module_file)


def test_cluster_run_writes_the_same_manifest_as_local(runs):
    local = json.loads((runs["local"] / "tokenize" / "manifest.json").read_text())
    cluster = json.loads((runs["cluster"] / "tokenize" / "manifest.json").read_text())
    assert sum(s["samples"] for s in local["splits"].values()) > 0
    assert cluster == local


@pytest.mark.parametrize("stage", ["clean", "dedupe", "filter"])
def test_cluster_run_writes_byte_identical_stage_data(runs, stage):
    local = files_under(runs["local"] / stage / "data")
    assert local, f"local run wrote no {stage}/data parts"
    assert files_under(runs["cluster"] / stage / "data") == local


def test_cluster_run_writes_byte_identical_shards_and_tokenizer(runs):
    local = files_under(runs["local"] / "tokenize" / "shards")
    assert files_under(runs["cluster"] / "tokenize" / "shards") == local
    assert (runs["cluster"] / "tokenize" / "tokenizer.json").read_bytes() == \
        (runs["local"] / "tokenize" / "tokenizer.json").read_bytes()


def test_duplicates_were_removed_in_both_runs(runs):
    """The comparison is not vacuous: dedupe found the planted exact and near duplicates on both masters."""
    for run in ("local", "cluster"):
        stats = json.loads((runs[run] / "dedupe" / "stats.json").read_text())
        dropped = stats.get("dropped", {})
        assert sum(dropped.values()) >= 25, (run, dropped)
