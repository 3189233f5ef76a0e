"""How the whole pipeline's cost grows with the data: `spark-submit jobs/pipeline.py` on 1x, 4x and 8x the
corpus in one run, per stage; and (`layout`) whether one plain JSONL file runs as fast as the gzip files.

Input. Scale N is N copies of the corpus (default: the shared corpus' `raw/docs-*.jsonl.gz`; `--docs` keeps
that many lines per copy, taken evenly from the files). Copy 0 is the original. Copy k > 0 gives every
document the id `ID-k` and a text in which about a third of the words are replaced by other words of the
same document: a word is replaced when a seeded hash of it, the word before it and k falls in a third of
the hash's range, and it takes the word after it. Words are runs of letters, marks and digits, and single
characters of the scripts dedupe shingles by characters (Han, kana, Thai, ...); punctuation and whitespace
stay in place. So a copy is no near duplicate of the original or of another copy (word 5-gram Jaccard at
most 0.17 and 0.10 on 600 labelled documents), and dedupe keeps them all; the words keep their shares of
the text (stop words, word lengths), so a copy goes through the filter much like the original. The change
depends on the text alone: the corpus' exact duplicates stay exact duplicates inside every copy, and most
of its near duplicates stay near duplicates (87% of the sampled pairs at Jaccard >= 0.8 stay above 0.8: an
edit also changes the words next to it). Lines that are not a JSON object with a string `text` (the
corpus' malformed lines) are copied unchanged, so rejections grow with the scale too. Each copy is written
as gzip JSONL files of the original's layout (`copy-NN/docs-MM.jsonl.gz`) under `--work` and reused by
later runs with the same corpus, `--docs` and `--seed`; scale N reads copies 0 to N-1 through symlinks.

Measurement. Each scale is one `spark-submit --master local[2] jobs/pipeline.py` run (`--master`), with
Spark's event log on. Per stage:
- wall seconds and documents in from the stage's `stats.json`;
- CPU seconds of the job's whole process tree (the spark-submit JVM, the Python driver and Python workers),
  read from /proc every 0.2 s and taken between the stage's start and summary lines in the job's output;
  the whole job's CPU is `getrusage(RUSAGE_CHILDREN)` of the spark-submit. Other people's work on a shared
  machine does not inflate CPU time, so linearity is judged on CPU and wall is shown beside it;
- the Spark jobs of the stage (`Stage.run` sets the stage's name as job group, which the event log's
  SparkListenerJobStart/StageSubmitted properties carry): their count, the tasks' executorCpuTime (the JVM
  side only: a Python worker's CPU is not in it), shuffle bytes written (and read) from the
  SparkListenerTaskEnd shuffle metrics, and from Spark's executor metrics (sampled every second, with
  `spark.executor.processTreeMetrics.enabled`) the most JVM heap in use and each executor's JVM + Python
  RSS;
- peak memory from the /proc samples taken during the stage: the driver is the spark-submit JVM plus the
  Python driver process, RSS summed; executors are the Python workers (pyspark.daemon and its forks, RSS
  summed); under local[N] the executor's JVM is the driver's. With another master the executors run
  elsewhere, and their peak is the largest executor's JVM + Python RSS from Spark's executor metrics.

Linearity. For each stage, on CPU and on wall seconds, with the documents each run's stage read (n):
    marginal ratio = ((T_big - T_small) / (n_big - n_small)) / (T_small / n_small)
the cost of each document added between the smallest and the largest scale over the cost per document of
the smallest run. 1.0 is linear; the target is at most 1.15 (within 15% of linear); below 1.0 the fixed part
(JVM start-up, per-job scheduling, BPE training on a bounded sample) spreads over more documents. With three
or more scales the marginal cost per document of the last step over that of the first step is printed too
(above 1.0: the cost per added document grows with the size). Driver peak memory, largest scale over
smallest: target at most 1.5 (flat).

Layout (`scale.py layout`): the same documents (copy 0) as ONE plain uncompressed JSONL file and as the
original gzip files, each through jobs/pipeline.py, one after the other (`--repeat` alternates them): the
wall-time ratio one-file / gzip files (goal at most 1.3) and the parts each stage committed (its `_SUCCESS`
listing; goal: more than one part for the one-file run, which clean cuts into `clean.reader.split_bytes`
ranges).

    .venv/bin/python benchmarks/scale.py --scales 1,4,8            # the full run (8x: 0.75 GB of text)
    .venv/bin/python benchmarks/scale.py --docs 2000 --scales 1,2  # a quick check
    .venv/bin/python benchmarks/scale.py layout
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path

import numpy as np
import regex

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline.dedup.minhash import GOLDEN, NO_SPACE_SCRIPTS, splitmix64  # noqa: E402
from pipeline.stages import STAGES  # noqa: E402

VARIANT_VERSION = 1  # part of the work directory's name: bump when the copies' recipe changes
MB = 1 << 20
POLL_SECONDS = 0.2

# ------------------------------------------------------------------------------------- building the copies

_NO_SPACE = NO_SPACE_SCRIPTS[1:-1]  # the members of dedupe's character class of scripts without spaces
WORD = regex.compile(rf"([{_NO_SPACE}]|[^\s\p{{P}}\p{{S}}{_NO_SPACE}]+)")  # split() keeps the words


def variant_text(text: str, copy: int, seed: int) -> str:
    """Copy `copy` of a text: about a third of its words replaced, each by the word after it (module
    docstring); a text with fewer than two words stays as it is."""
    pieces = WORD.split(text)  # text between words, word, text between words, ...
    words = pieces[1::2]
    n = len(words)
    if n < 2:
        return text
    key = f"{seed}:{copy}".encode()
    types = {w: i for i, w in enumerate(dict.fromkeys(words))}
    type_hash = np.array([int.from_bytes(blake2b(w.encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest(),
                                         "big") for w in types], dtype=np.uint64)
    h = type_hash[np.fromiter(map(types.__getitem__, words), dtype=np.int64, count=n)]
    h = splitmix64(h ^ splitmix64(np.concatenate(([GOLDEN], h[:-1]))))  # of the word and the one before it
    out = list(words)
    for i in np.flatnonzero(h % np.uint64(3) == 0).tolist():
        out[i] = words[(i + 1) % n]
    pieces[1::2] = out
    return "".join(pieces)


def variant_line(line: bytes, copy: int, seed: int) -> bytes:
    """Copy `copy` of one input line; a line that is not a JSON object with a string text, unchanged."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return line
        record["text"] = variant_text(record["text"], copy, seed)
        if isinstance(record.get("id"), str):
            record["id"] = f"{record['id']}-{copy}"
        return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
    except (ValueError, UnicodeError):  # malformed JSON, invalid UTF-8, a lone surrogate
        return line


def text_bytes(line: bytes) -> int:
    """UTF-8 bytes of the line's text; 0 for a line without one."""
    try:
        record = json.loads(line)
        text = record.get("text") if isinstance(record, dict) else None
        return len(text.encode("utf-8")) if isinstance(text, str) else 0
    except (ValueError, UnicodeError):
        return 0


def build_file(src: Path, dest: Path, copy: int, seed: int, quota: int | None) -> dict:
    """Write copy `copy` of the first `quota` lines of `src` (all of them: None) to `dest`; the full original
    (copy 0, no quota) is linked, not rewritten. Returns its lines and text bytes."""
    lines = size = 0
    if copy == 0 and quota is None:
        os.symlink(src, dest)
        with gzip.open(src, "rb") as f:
            for line in f:
                lines, size = lines + 1, size + text_bytes(line)
        return {"lines": lines, "text_bytes": size}
    partial = dest.with_name(dest.name + ".partial")
    with gzip.open(src, "rb") as f, gzip.open(partial, "wb", compresslevel=6) as out:
        for line in f:
            if quota is not None and lines >= quota:
                break
            line = variant_line(line, copy, seed) if copy else line
            out.write(line if line.endswith(b"\n") else line + b"\n")
            lines, size = lines + 1, size + text_bytes(line)
    partial.rename(dest)
    return {"lines": lines, "text_bytes": size}


def _build_task(task: tuple) -> tuple[int, str, dict]:
    src, dest, copy, seed, quota = task
    return copy, dest.name, build_file(src, dest, copy, seed, quota)


@dataclass
class Corpus:
    """The built copies of a corpus under `root` (copy-00, copy-01, ...), each with build.json."""

    root: Path
    sources: list[Path]

    def copy_dir(self, k: int) -> Path:
        return self.root / f"copy-{k:02d}"

    def copy_stats(self, k: int) -> dict:
        return json.loads((self.copy_dir(k) / "build.json").read_text())

    def scale_input(self, scale: int) -> Path:
        """A directory of symlinks to copies 0 .. scale-1: the input of scale `scale`."""
        top = self.root / f"scale-{scale}x"
        if not top.exists():
            partial = self.root / f".scale-{scale}x.partial"
            shutil.rmtree(partial, ignore_errors=True)
            for k in range(scale):
                (partial / self.copy_dir(k).name).mkdir(parents=True)
                for src in self.sources:
                    os.symlink(self.copy_dir(k) / src.name, partial / self.copy_dir(k).name / src.name)
            partial.rename(top)
        return top

    def size(self, scale: int) -> tuple[int, int]:
        """(input lines, text bytes) of scale `scale`."""
        files = [f for k in range(scale) for f in self.copy_stats(k)["files"].values()]
        return sum(f["lines"] for f in files), sum(f["text_bytes"] for f in files)


def build_corpus(corpus: Path, shards: str, docs: int | None, seed: int, copies: int, work: Path,
                 jobs: int) -> Corpus:
    sources = sorted((corpus / "raw").glob(shards))
    if not sources:
        sys.exit(f"no files match {corpus / 'raw' / shards}")
    ident = json.dumps([str(corpus.resolve()), shards, docs, seed, VARIANT_VERSION,
                        [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sources]])
    root = work / f"{corpus.name}-{docs or 'all'}-seed{seed}-{blake2b(ident.encode(), digest_size=4).hexdigest()}"
    quotas = [None] * len(sources) if docs is None else \
        [docs // len(sources) + (i < docs % len(sources)) for i in range(len(sources))]
    built = Corpus(root, sources)
    todo = [k for k in range(copies) if not (built.copy_dir(k) / "build.json").exists()]
    if not todo:
        print(f"[scale] reusing {copies} copies in {root}", flush=True)
        return built
    print(f"[scale] building copies {todo} of {len(sources)} files in {root}", flush=True)
    start = time.perf_counter()
    tasks = []
    for k in todo:
        shutil.rmtree(built.copy_dir(k), ignore_errors=True)
        built.copy_dir(k).mkdir(parents=True)
        tasks += [(src, built.copy_dir(k) / src.name, k, seed, quota) for src, quota in zip(sources, quotas)]
    files: dict[int, dict] = defaultdict(dict)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for k, name, stats in pool.map(_build_task, tasks):
            files[k][name] = stats
    for k in todo:  # build.json last: a copy without it is rebuilt
        (built.copy_dir(k) / "build.json").write_text(json.dumps({"copy": k, "seed": seed, "docs": docs,
                                                                 "files": dict(sorted(files[k].items()))}, indent=1))
    print(f"[scale] built in {time.perf_counter() - start:.0f} s", flush=True)
    return built


def plain_file(built: Corpus) -> Path:
    """Copy 0 as one uncompressed JSONL file (the layout run's input)."""
    path = built.root / "layout-plain" / "docs.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("docs.jsonl.partial")
        with open(partial, "wb") as out:
            for src in built.sources:
                with gzip.open(built.copy_dir(0) / src.name, "rb") as f:
                    for line in f:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
        partial.rename(path)
    return path

# ---------------------------------------------------------------------------- watching the job's processes


def _role(pid: int) -> str:
    """'jvm', 'driver' (the Python driver), 'worker' (pyspark.daemon, its forks, pyspark.worker) or
    'other'."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    exe = os.path.basename(cmdline[0].decode(errors="replace")) if cmdline and cmdline[0] else ""
    if exe == "java":
        return "jvm"
    if exe.startswith("python"):
        return "worker" if any(b"pyspark.daemon" in a or b"pyspark.worker" in a for a in cmdline) else "driver"
    return "other"


class ProcessTree:
    """CPU seconds and RSS by role of a process and its descendants, from /proc."""

    def __init__(self, root: int):
        self.root = root
        self.roles: dict[tuple[int, str, str], str] = {}  # (pid, start time, name) -> role
        self.tick = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> tuple[float, dict[str, int]]:
        """(CPU seconds so far, reaped children included; RSS bytes by role)."""
        stats = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        comm, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
                except OSError:  # it ended meanwhile
                    continue
                stats[int(entry.name)] = [comm] + rest.split()  # fields[k] is stat's field k + 2
        children: dict[int, list[int]] = defaultdict(list)
        for pid, fields in stats.items():
            children[int(fields[2])].append(pid)
        cpu, rss, todo = 0, Counter(), [self.root]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            fields = stats.get(pid)
            if fields is None:
                continue
            cpu += sum(int(x) for x in fields[12:16])  # utime stime cutime cstime
            key = (pid, fields[20], fields[0])  # start time and name: spark-submit's shell execs the JVM
            if key not in self.roles:
                self.roles[key] = _role(pid)
            rss[self.roles[key]] += int(fields[22]) * self.page
        return cpu / self.tick, rss


class Peaks:
    """Peak RSS by role (`peaks`): driver (JVM + Python driver), worker, jvm, python_driver."""

    peaks: dict[str, int]

    @property
    def driver_peak(self) -> int:
        return self.peaks.get("driver", 0)

    @property
    def worker_peak(self) -> int:
        return self.peaks.get("worker", 0)


@dataclass
class StageRun(Peaks):
    """One stage of one run: its stats.json, what the /proc samples saw during it, what Spark logged."""

    name: str
    docs_in: int = 0
    kept: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peaks: dict[str, int] = field(default_factory=dict)  # RSS: driver (JVM + Python driver), worker, jvm, python_driver
    parts: dict[str, int] = field(default_factory=dict)
    spark: "SparkFigures | None" = None


@dataclass
class Run(Peaks):
    label: str
    docs: int
    text_bytes: int
    wall: float
    cpu: float
    load: float  # the machine's mean 1-minute load average during the run
    peaks: dict[str, int]  # as StageRun's, over the whole run
    stages: dict[str, StageRun]
    outside: "SparkFigures"  # Spark jobs no stage started


@dataclass
class SparkFigures:
    jobs: int = 0
    tasks: int = 0
    task_cpu_ns: int = 0
    shuffle_write: int = 0
    shuffle_read: int = 0
    tree_peak: dict[str, int] = field(default_factory=dict)  # executor id -> JVM + Python RSS
    heap_peak: int = 0  # the most JVM heap in use on any executor (the driver's, under local[N])


_STAGE_NAMES = "|".join(map(re.escape, STAGES))
STARTED = re.compile(rf"^\[pipeline\] ({_STAGE_NAMES}): ")
FINISHED = re.compile(rf"^({_STAGE_NAMES}): input [0-9,]+ -> kept")


def spark_submit(args: argparse.Namespace, input_path: Path, run_dir: Path) -> tuple[float, float, float, dict, dict]:
    """Run jobs/pipeline.py on `input_path` into run_dir/out. Returns (wall s, CPU s of the process tree,
    the machine's mean 1-minute load average meanwhile, the whole run's peak RSS by role, {stage: (CPU s,
    peak RSS by role)})."""
    events = run_dir / "events"
    events.mkdir(parents=True)
    env = dict(os.environ, SPARK_LOCAL_IP=os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
               PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable))
    conf = {
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.eventLog.logStageExecutorMetrics": "true",
        "spark.executor.processTreeMetrics.enabled": "true",
        "spark.executor.metrics.pollingInterval": "1s",
    }
    conf.update(kv.split("=", 1) for kv in args.conf)
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", args.master,
           "--driver-memory", args.driver_memory]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += ["jobs/pipeline.py", "--input", str(input_path), "--output", str(run_dir / "out")]
    for kv in args.set:
        cmd += ["--set", kv]
    log_path = run_dir / "pipeline.log"
    peaks: Counter = Counter()
    per_stage: dict[str, list] = {}  # stage -> [CPU at start, CPU at end, peak RSS by role]
    current, pending = None, b""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "wb") as log, open(log_path, "rb") as reader:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        tree = ProcessTree(proc.pid)
        cpu, loads = 0.0, []
        while True:
            loads.append(os.getloadavg()[0])
            sampled, rss = tree.sample()  # before poll() reaps the JVM, whose times then hold its children's
            cpu = max(cpu, sampled)  # a descendant orphaned before its parent reaped it leaves the tree
            done = proc.poll() is not None
            pending += reader.read()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                if m := STARTED.match(text):
                    current = m[1]
                    per_stage[current] = [cpu, cpu, Counter()]
                elif (m := FINISHED.match(text)) and m[1] in per_stage:
                    per_stage[m[1]][1] = cpu
                    current = None if current == m[1] else current
            memory = Counter(driver=rss["jvm"] + rss["driver"], worker=rss["worker"], jvm=rss["jvm"],
                             python_driver=rss["driver"])
            if current is not None:
                per_stage[current][1] = cpu
                per_stage[current][2] |= memory  # the largest of each so far
            peaks |= memory
            if done:
                break
            time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}); the end of {log_path}:\n"
                 f"{log_path.read_text(errors='replace')[-4000:]}")
    # getrusage misses the Python workers the JVM never reaps (their daemon is killed at exit); the polled
    # tree holds them, and getrusage what ran after the last sample: the larger of the two stands
    total_cpu = max(cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return (wall, total_cpu, sum(loads) / len(loads), peaks,
            {s: (end - begin, rss) for s, (begin, end, rss) in per_stage.items()})


def spark_figures(events: Path) -> dict[str | None, SparkFigures]:
    """Per job group (the pipeline stage; None for jobs outside any stage): jobs, tasks, executor CPU,
    shuffle bytes and peak process-tree RSS per executor, from the event log under `events`."""
    files = sorted((p for p in events.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))),
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    group_of: dict[int, str | None] = {}  # Spark stage id -> job group
    figures: dict[str | None, SparkFigures] = defaultdict(SparkFigures)

    def peak(group, executor: str, metrics: dict) -> None:
        rss = metrics.get("ProcessTreeJVMRSSMemory", 0) + metrics.get("ProcessTreePythonRSSMemory", 0)
        fig = figures[group]
        fig.tree_peak[executor] = max(fig.tree_peak.get(executor, 0), rss)
        fig.heap_peak = max(fig.heap_peak, metrics.get("JVMHeapMemory", 0))

    for path in files:
        with open(path) as f:
            for line in f:
                event = json.loads(line)
                kind = event["Event"]
                if kind == "SparkListenerJobStart":
                    group = (event.get("Properties") or {}).get("spark.jobGroup.id")
                    figures[group].jobs += 1
                    for stage_id in event.get("Stage IDs", []):
                        group_of.setdefault(stage_id, group)
                elif kind == "SparkListenerStageSubmitted":
                    group_of[event["Stage Info"]["Stage ID"]] = (event.get("Properties") or {}).get("spark.jobGroup.id")
                elif kind == "SparkListenerTaskEnd":
                    fig = figures[group_of.get(event["Stage ID"])]
                    metrics = event.get("Task Metrics") or {}
                    fig.tasks += 1
                    fig.task_cpu_ns += metrics.get("Executor CPU Time", 0)
                    fig.shuffle_write += (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
                    read = metrics.get("Shuffle Read Metrics") or {}
                    fig.shuffle_read += read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
                    peak(group_of.get(event["Stage ID"]), event["Task Info"]["Executor ID"],
                         event.get("Task Executor Metrics") or {})
                elif kind == "SparkListenerStageExecutorMetrics":
                    peak(group_of.get(event["Stage ID"]), event["Executor ID"], event["Executor Metrics"])
    return figures


def committed_parts(stage_dir: Path) -> dict[str, int]:
    """Files per sub-directory that the stage's _SUCCESS lists."""
    listing = json.loads((stage_dir / "_SUCCESS").read_text())
    return {subdir: len(files) for subdir, files in listing["files"].items()}


def run_pipeline(args: argparse.Namespace, label: str, input_path: Path, docs: int, text: int, run_dir: Path) -> Run:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    print(f"[scale] {label}: {docs:,} input lines, {text / MB:,.0f} MiB of text -> {run_dir}", flush=True)
    wall, cpu, load, peaks, watched = spark_submit(args, input_path, run_dir)
    out = run_dir / "out"
    spark = spark_figures(run_dir / "events")
    stages = {}
    for stats in json.loads((out / "pipeline.json").read_text())["stages"]:
        name = stats["stage"]
        stage_cpu, rss = watched.get(name, (0.0, Counter()))
        stages[name] = StageRun(name, stats["input"], stats["kept"], stats["seconds"], stage_cpu, dict(rss),
                                committed_parts(out / name), spark.get(name, SparkFigures()))
    run = Run(label, docs, text, wall, cpu, load, dict(peaks), stages, spark.get(None, SparkFigures()))
    (run_dir / "figures.json").write_text(json.dumps(run, default=lambda o: o.__dict__, indent=1))
    if not args.keep_output:
        shutil.rmtree(out)
    print(f"[scale] {label}: {wall:.1f} s, {cpu:.1f} CPU s, load average {load:.1f}; "
          + ", ".join(f"{s.name} {s.docs_in:,} -> {s.kept:,} in {s.wall:.1f} s" for s in stages.values()), flush=True)
    return run

# ---------------------------------------------------------------------------------------------- reports


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def mb(n: float) -> str:
    return f"{n / MB:,.0f}"


def executor_peak(args: argparse.Namespace, stage: StageRun) -> int:
    """The Python workers' RSS under local[N]; else the largest executor's JVM + Python RSS from Spark."""
    if args.master.startswith("local"):
        return stage.worker_peak
    return max((v for k, v in stage.spark.tree_peak.items() if k != "driver"), default=0)


def marginal(small: tuple[int, float], big: tuple[int, float]) -> float:
    """((T_big - T_small) / (n_big - n_small)) / (T_small / n_small); nan where undefined."""
    (n0, t0), (n1, t1) = small, big
    if n1 == n0 or t0 <= 0 or n0 == 0:
        return float("nan")
    return ((t1 - t0) / (n1 - n0)) / (t0 / n0)


def step_ratio(points: list[tuple[int, float]]) -> float:
    """Marginal cost per document of the last step over that of the first step."""
    (na, ta), (nb, tb), (nc, tc), (nd, td) = points[0], points[1], points[-2], points[-1]
    if nb == na or nd == nc or tb == ta:
        return float("nan")
    return ((td - tc) / (nd - nc)) / ((tb - ta) / (nb - na))


def print_scale_report(args: argparse.Namespace, runs: dict[int, Run]) -> None:
    scales = sorted(runs)
    first, last = runs[scales[0]], runs[scales[-1]]
    local = args.master.startswith("local")
    print(f"\n{args.master}, driver memory {args.driver_memory}; corpus {args.corpus} ({args.shards}"
          f"{f', {args.docs:,} lines per copy' if args.docs else ''}); CPU: the job's process tree; peaks: RSS from "
          f"/proc every {POLL_SECONDS} s (driver: JVM + Python driver; executors: "
          f"{'Python workers' if local else 'the largest executor, from Spark'}); JVM heap: Spark's, in use\n")
    print("Whole job (spark-submit start to exit, JVM start-up and the report included):\n")
    rows = []
    for s in scales:
        r = runs[s]
        spark = [st.spark for st in r.stages.values()] + [r.outside]
        executor = r.worker_peak if local else max((executor_peak(args, st) for st in r.stages.values()), default=0)
        shuffle = sum(f.shuffle_write for f in spark) / MB
        rows.append([f"{s}x", f"{r.docs:,}", f"{r.text_bytes / 1e6:,.1f}", f"{r.wall:.1f}", f"{r.cpu:.1f}",
                     f"{r.docs / r.cpu:,.0f}", sum(f.jobs for f in spark), f"{shuffle:,.1f}", mb(r.driver_peak),
                     mb(executor), mb(max(f.heap_peak for f in spark)), f"{r.load:.1f}"])
    print(table(["scale", "input lines", "text MB", "wall s", "CPU s", "lines/CPU-s", "Spark jobs", "shuffle write MB",
                 "driver peak MB", "executor peak MB", "JVM heap MB", "load avg"], rows))
    names = [n for n in first.stages if n in last.stages]
    for name in names:
        rows = []
        for s in scales:
            st = runs[s].stages[name]
            sp = st.spark
            rows.append([f"{s}x", f"{st.docs_in:,}", f"{st.wall:.1f}", f"{st.cpu:.1f}",
                         f"{st.docs_in / st.cpu:,.0f}" if st.cpu else "", sp.jobs, f"{sp.task_cpu_ns / 1e9:.1f}",
                         f"{sp.shuffle_write / MB:,.1f} / {sp.shuffle_read / MB:,.1f}", mb(st.driver_peak),
                         mb(executor_peak(args, st)), mb(sp.heap_peak),
                         ", ".join(f"{k} {v}" for k, v in st.parts.items())])
        print(f"\n{name}:\n")
        print(table(["scale", "docs in", "wall s", "CPU s", "docs/CPU-s", "Spark jobs", "task CPU s (JVM)",
                     "shuffle write / read MB", "driver peak MB", "executor peak MB", "JVM heap MB", "parts"], rows))
    if len(scales) < 2:
        return
    steps = len(scales) > 2
    print(f"\nLinearity {scales[0]}x -> {scales[-1]}x: marginal ratio = ((T_big - T_small) / (n_big - n_small)) / "
          f"(T_small / n_small); 1.0 is linear, target <= 1.15"
          + (f"; last step / first step: the marginal cost per document of {scales[-2]}x -> {scales[-1]}x over "
             f"that of {scales[0]}x -> {scales[1]}x" if steps else "") + "\n")
    series = [(name, [(runs[s].stages[name].docs_in, runs[s].stages[name].cpu) for s in scales],
               [(runs[s].stages[name].docs_in, runs[s].stages[name].wall) for s in scales]) for name in names]
    series.append(("whole job", [(runs[s].docs, runs[s].cpu) for s in scales],
                   [(runs[s].docs, runs[s].wall) for s in scales]))
    rows = []
    for name, cpu, wall in series:
        ratio = marginal(cpu[0], cpu[-1])
        rows.append([name, f"{ratio:.2f}", f"{marginal(wall[0], wall[-1]):.2f}"]
                    + ([f"{step_ratio(cpu):.2f}", f"{step_ratio(wall):.2f}"] if steps else [])
                    + ["met" if ratio <= 1.15 else "not met"])
    step_columns = ["last step / first step CPU", "last step / first step wall"] if steps else []
    print(table(["stage", "marginal ratio CPU", "marginal ratio wall"] + step_columns + ["CPU target"], rows))
    memory = last.driver_peak / first.driver_peak
    print(f"\nDriver peak memory {scales[-1]}x / {scales[0]}x: {memory:.2f} ({mb(first.driver_peak)} -> "
          f"{mb(last.driver_peak)} MB; target <= 1.5: {'met' if memory <= 1.5 else 'not met'}); executor peak "
          f"{last.worker_peak / max(first.worker_peak, 1):.2f}")


def print_layout_report(runs: dict[str, list[Run]]) -> None:
    def median(rs: list[Run]) -> Run:
        return sorted(rs, key=lambda r: r.wall)[(len(rs) - 1) // 2]

    plain, gz = median(runs["one plain file"]), median(runs["gzip files"])
    rows = []
    for label, rs in runs.items():
        for k, r in enumerate(rs):
            median_mark = " (median)" if r is plain or r is gz else ""
            rows.append([label, f"{k + 1}{median_mark}", f"{r.docs:,}", f"{r.wall:.1f}", f"{r.cpu:.1f}",
                         f"{r.load:.1f}"]
                        + [f"{st.wall:.1f}" for st in r.stages.values()]
                        + [", ".join(f"{n} {_main_parts(st.parts)}" for n, st in r.stages.items())])
    print()
    print(table(["input", "run", "input lines", "wall s", "CPU s", "load avg"] + [f"{n} s" for n in plain.stages]
                + ["parts per stage (data; tokenize: shards)"], rows))
    ratio = plain.wall / gz.wall
    fewest = min(st.parts["data"] for st in plain.stages.values() if "data" in st.parts)
    print(f"\nwall one plain file / gzip files: {ratio:.2f} (goal <= 1.3: {'met' if ratio <= 1.3 else 'not met'}); "
          f"CPU {plain.cpu / gz.cpu:.2f}; fewest data parts a document stage wrote from the one file: {fewest} "
          f"(goal > 1: {'met' if fewest > 1 else 'not met'}; tokenize's shards follow tokenize.shard_bytes)")


def _main_parts(parts: dict[str, int]) -> int:
    """A stage's committed parts: data/ for a document stage, the shards (train + val) for tokenize."""
    return parts["data"] if "data" in parts else sum(n for k, n in parts.items() if k.startswith("shards"))

# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring (benchmarks/scale.py) for how copies are made "
                                        "and what each figure means.")
    ap.add_argument("mode", nargs="?", choices=("scale", "layout"), default="scale",
                    help="scale: the pipeline at each of --scales (default); layout: one plain JSONL file beside "
                         "the gzip files, the same documents")
    ap.add_argument("--corpus", type=Path, default=labelled_corpus.DEFAULT,
                    help="corpus directory whose raw/ holds the input (default: %(default)s)")
    ap.add_argument("--shards", default="docs-*.jsonl.gz", help="glob of the input files under CORPUS/raw "
                    "(default: %(default)s)")
    ap.add_argument("--docs", type=int, help="input lines per copy, taken evenly from the files (default: all)")
    ap.add_argument("--scales", default="1,4,8", help="comma-separated numbers of copies, one run each, "
                    "smallest first (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the copies' word replacement (default: %(default)s)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/corpusforge-scale"),
                    help="where copies, pipeline outputs, logs and event logs go; copies are reused (default: "
                         "%(default)s)")
    ap.add_argument("--master", default="local[2]", help="spark-submit --master (default: %(default)s)")
    ap.add_argument("--driver-memory", default="4g", help="spark-submit --driver-memory; under local[N] the "
                    "executor lives in the driver's JVM (default: %(default)s)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra spark-submit --conf (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a pipeline setting passed to jobs/pipeline.py --set (repeatable)")
    ap.add_argument("--repeat", type=int, default=1, help="layout: runs per input, alternating; the median "
                    "wall time stands for each (default: %(default)s)")
    ap.add_argument("--build-jobs", type=int, default=2, help="processes writing the copies (default: %(default)s)")
    ap.add_argument("--keep-output", action="store_true", help="keep each run's pipeline output (8x: ~1 GB); "
                    "by default only its log, event log and figures.json stay")
    args = ap.parse_args()
    scales = sorted({int(s) for s in args.scales.split(",")}) if args.mode == "scale" else [1]
    if scales[0] < 1 or (args.docs is not None and args.docs < 1) or args.repeat < 1:
        ap.error("--scales, --docs and --repeat must be positive")

    started = time.perf_counter()
    built = build_corpus(args.corpus, args.shards, args.docs, args.seed, max(scales), args.work, args.build_jobs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.mode == "scale":
        runs = {}
        for s in scales:
            runs[s] = run_pipeline(args, f"{s}x", built.scale_input(s), *built.size(s),
                                   args.work / "runs" / f"{stamp}-{s}x")
        print_scale_report(args, runs)
    else:
        inputs = {"one plain file": plain_file(built), "gzip files": built.scale_input(1)}
        lines, text = built.size(1)
        layout: dict[str, list[Run]] = {label: [] for label in inputs}
        for k in range(args.repeat):
            for label, path in inputs.items():
                layout[label].append(run_pipeline(args, label, path, lines, text, args.work / "runs" /
                                                  f"{stamp}-layout-{label.replace(' ', '-')}-{k}"))
        print_layout_report(layout)
    print(f"\n[scale] {args.mode} took {time.perf_counter() - started:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
