"""The tests' shared fixtures: synthetic English documents (random sentences over plain words, varied enough
to pass the repetition filters, with enough stop words to be English for the language identifier and
Gopher's stop-word rule), one short text per language for the filter, filter helpers, small JSONL
inputs for the stages, a reader of report.html's sections, and the trainer tests' tokenized dataset and
torchrun launches (one node, or several agents on loopback)."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import inspect
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.filter import FilterConfig, RuleSet, rules
from pipeline.filter.batch import rule_checks, substring_counts
from pipeline.filter.text import batch_stats
from pipeline.tokenize.shards import build_manifest, pack_documents, token_dtype, write_shard

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


def sentence(rng: random.Random) -> str:
    """One English-looking sentence of 10-18 words, about a third of them stop words."""
    words = [rng.choice(STOP) if rng.random() < 0.35 else rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
    return " ".join(words).capitalize() + "."


def document(rng: random.Random, paragraphs: int = 3, sentences: int = 4) -> str:
    """Paragraphs of sentences, long enough for every quality rule and for 5-gram MinHash."""
    return "\n\n".join("\n".join(sentence(rng) for _ in range(sentences)) for _ in range(paragraphs))


def near_copy(text: str, word: str = "lighthouse") -> str:
    """`text` with its middle word replaced: a near duplicate (Jaccard of word 5-grams ~0.9)."""
    words = text.split(" ")
    words[len(words) // 2] = word
    return " ".join(words)


EN = """The old lighthouse stood at the edge of the cliff for more than a century. Sailors who passed the headland at night looked for its beam to find their way home.

In the spring of that year, the keeper and his daughter painted the tower white again. They carried the paint up the narrow stairs one bucket at a time, and the work took them most of a month.

When the storm came in October, the light did not fail. The fishing boats that had been caught outside the harbour followed it through the rocks, and every crew reached the shore with their nets."""

DE = """Der alte Leuchtturm stand mehr als hundert Jahre lang am Rand der Klippe. Seeleute, die nachts an der Landzunge vorbeifuhren, suchten nach seinem Licht, um den Weg nach Hause zu finden.

Im Frühjahr strichen der Wärter und seine Tochter den Turm wieder weiß. Sie trugen die Farbe Eimer für Eimer die schmale Treppe hinauf, und die Arbeit dauerte fast einen ganzen Monat.

Als im Oktober der Sturm kam, fiel das Licht nicht aus. Die Fischerboote, die draußen vor dem Hafen überrascht worden waren, folgten ihm durch die Felsen, und jede Mannschaft erreichte mit ihren Netzen das Ufer."""

ZH = """老灯塔在悬崖边上矗立了一百多年。夜里经过海角的水手们总是寻找它的光，好找到回家的路。

那年春天，看守人和他的女儿把塔身重新刷成了白色。他们提着油漆桶一趟一趟地走上狭窄的楼梯，这项工作几乎花了整整一个月。

十月风暴来临的时候，灯光一直没有熄灭。被困在港外的渔船跟着它穿过礁石，每一条船上的人都带着渔网平安地回到了岸上。"""

RU = """Старый маяк стоял на краю утёса больше ста лет. Моряки, проходившие мимо мыса ночью, искали его луч, чтобы найти дорогу домой.

Весной смотритель и его дочь снова покрасили башню в белый цвет. Они носили краску по узкой лестнице по одному ведру, и эта работа заняла у них почти целый месяц.

Когда в октябре пришёл шторм, свет не погас. Рыбацкие лодки, застигнутые бурей за гаванью, шли за ним между скал, и каждая команда вернулась на берег со своими сетями."""


FINEWEB_ENGLISH = FilterConfig(english=RuleSet())  # FineWeb's English chain instead of FineWeb-2's rules


def failing(text: str, lang: str = "en", cfg: FilterConfig | None = None) -> list[str]:
    """Every check (not only the first) that `text` fails under the rules for `lang`."""
    rs = (cfg or FilterConfig()).rules_for(lang)
    s = rules.Stats(batch_stats([text], [lang], rs.c4, rs.fineweb.short_line_length)._asdict())
    checks = rule_checks(s, rs, substring_counts(pa.array([text])), [lang])
    return [reason for reason, mask in checks if mask is not None and bool(mask[0])]


def batch_of(*texts: str, **extra) -> pa.RecordBatch:
    n = len(texts)
    columns = {
        "id": pa.array([f"d{i}" for i in range(n)], pa.string()),
        "text": pa.array(list(texts), pa.string()),
        "source": pa.array(["test"] * n, pa.string()),
        "url": pa.array([None] * n, pa.string()),
        "created": pa.array([None] * n, pa.string()),
        **{k: pa.array(v) for k, v in extra.items()},
    }
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


STAGE_WORDS = ("river stone light garden window morning letter silver quiet market harbor winter forest "
         "lantern bridge candle meadow thunder orchard valley").split()


def documents(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        sentences = [" ".join(rng.choice(STAGE_WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."
                     for _ in range(rng.randint(2, 6))]
        docs.append({"id": f"doc{i:04d}", "text": " ".join(sentences), "source": "test", "url": None, "created": None})
    return docs


def write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")


def write_corpus(raw: Path, n: int = 300) -> None:
    """~300 documents in two JSONL.gz files: exact duplicates, near duplicates (one word changed) and a few
    one-sentence documents the quality filter drops."""
    rng = random.Random(7)
    docs = []
    for i in range(n - 35):
        docs.append({"id": f"doc-{i:04d}", "text": document(rng), "source": "synthetic"})
    for j in range(15):
        docs.append({**docs[j * 3], "id": f"exact-{j:02d}"})
    for j in range(15):
        docs.append({"id": f"near-{j:02d}", "text": near_copy(docs[100 + j]["text"]), "source": "synthetic"})
    for j in range(5):
        docs.append({"id": f"short-{j:02d}", "text": sentence(rng), "source": "synthetic"})
    rng.shuffle(docs)
    raw.mkdir(parents=True)
    for k, part in enumerate((docs[: n // 2], docs[n // 2 :])):
        with gzip.open(raw / f"docs-{k}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(d) + "\n" for d in part)


# Credentials the storage tests put in URIs and the environment, and the parts of them no output may hold.
KEY, SECRET, TOKEN = "AKIAKEYID", "sEcReT/part+two", "tOkEnValue"
HIDDEN = (KEY, "sEcReT", "part+two", TOKEN)


def write_docs(directory, name: str, n: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    texts = [f"Document {i} of {name} has a sentence about rivers and stones." for i in range(n)]
    (directory / name).write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n"
                                          for i, t in enumerate(texts)), encoding="utf-8")
    return texts


# The trainer's tests: a small tokenized dataset, and how they launch the real entry point under torchrun.

MODULES = ["os", "json", "collections", "argparse", "tarfile", "pathlib", "functools", "itertools",
           "subprocess", "logging", "http.client", "urllib.request", "unittest", "decimal", "fractions",
           "statistics", "textwrap", "string", "re", "datetime", "calendar", "csv", "zipfile", "shutil",
           "tempfile", "threading", "asyncio", "socket", "inspect", "dataclasses", "enum", "random"]


def docstrings() -> list[tuple[str, str]]:
    docs = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            if inspect.isfunction(obj) or inspect.isclass(obj):
                doc = inspect.getdoc(obj)
                if doc and len(doc) > 80:
                    docs.append((f"{name}.{attr}", doc))
    return docs


def _hash(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


def doc_language(doc_id: str, languages: tuple[str, ...]) -> str:
    """The language make_dataset gives a document (a label for attributing loss, not a real language)."""
    return languages[_hash(7, doc_id) % len(languages)]


def make_dataset(root: Path, vocab_size: int = 1024, sample_tokens: int = 256, train_shards: int = 4,
                 val_shards: int = 2, val_fraction: float = 0.1, seed: int = 0, modules: list[str] | None = None,
                 languages: tuple[str, ...] = ()) -> Path:
    """Write tokenizer.json, shards/{train,val}/ and manifest.json under root; return the manifest path.

    The tokenizer is always trained on every module's docstrings, so datasets of other `modules` (default
    all) share it. With `languages` each document gets one of them by a hash of its id and the shards are
    written with languages and text bytes (sample schema v2); without, as version 1 samples."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    every = docstrings()
    docs = [d for d in every if modules is None or d[0].rsplit(".", 1)[0] in modules]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator((t for _, t in every), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    root.mkdir(parents=True, exist_ok=True)
    tok.save(str(root / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    dtype = token_dtype(tok.get_vocab_size())

    assigned: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for doc_id, text in docs:
        split = "val" if int.from_bytes(hashlib.blake2b(doc_id.encode()).digest(), "big") % 10**6 < val_fraction * 10**6 \
            else "train"
        n = val_shards if split == "val" else train_shards
        assigned.setdefault((split, _hash(seed, doc_id) % n), []).append((doc_id, text))
    records: dict[str, list[dict]] = {"train": [], "val": []}
    for (split, index) in sorted(assigned):
        group = sorted(assigned[(split, index)], key=lambda d: _hash(seed + 1, d[0]))
        encoded = [(doc_id, np.array(tok.encode(text).ids + [eos])) for doc_id, text in group]
        if languages:
            encoded = [(doc_id, tokens, doc_language(doc_id, languages), len(text.encode("utf-8")))
                       for (doc_id, tokens), (_, text) in zip(encoded, group)]
        url = f"shards/{split}/shard-{index:06d}.tar"
        (root / url).parent.mkdir(parents=True, exist_ok=True)
        with open(root / url, "wb") as f:
            info = write_shard(f, pack_documents(encoded, sample_tokens), index, dtype)
        records[split].append({**info, "url": url, "documents": len(group),
                               "text_bytes": sum(len(t.encode("utf-8")) for _, t in group)})
    tok_bytes = (root / "tokenizer.json").read_bytes()
    manifest = build_manifest(
        tokenizer={"path": "tokenizer.json", "sha256": hashlib.sha256(tok_bytes).hexdigest(),
                   "vocab_size": tok.get_vocab_size(), "eos_id": eos},
        dtype=dtype, sample_tokens=sample_tokens, seed=seed, splits=records, config={"source": "stdlib docstrings"})
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root / "manifest.json"


REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).parent / "torchrun"
STEPS = 30  # the tiny preset: checkpoints and evaluations every 10 steps

# Run each worker through the real entry point, then save its parameters so the test can compare replicas.
WRAPPER = f"""
import os, sys
sys.path.insert(0, {str(REPO)!r})
import torch
from trainer.main import main
model = main(sys.argv[1:])
out = sys.argv[sys.argv.index("--out") + 1]
torch.save(model.state_dict(), os.path.join(out, f"params-rank{{os.environ.get('RANK', '0')}}.pt"))
"""


def _can_unshare() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


UNSHARE = _can_unshare()


def in_namespace(cmd: list[str]) -> list[str]:
    """A private loopback-only network namespace when allowed: torchrun's store binds all interfaces."""
    if UNSHARE:
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up; exec "$@"', "sh", *cmd]
    return cmd


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (field 4 of /proc/<pid>/stat, after the parenthesised name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def worker_pid(agent: int, rank: int, timeout: float = 60.0) -> int:
    """The worker of torchrun agent `agent` that runs as RANK `rank`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(agent):
            try:
                if _environ(child).get("RANK") == str(rank):
                    return child
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no worker with RANK={rank} under torchrun pid {agent}")


def run_killing_a_worker(cmd: list[str], out: Path, log: Path) -> str:
    """Run torchrun `cmd` (given --max-restarts) on one node, SIGKILL its rank 1 worker once the run's first
    checkpoint (step 10) exists, and wait for the restarted group to finish; the log's text."""
    with open(log, "w") as f:
        # `unshare -n` and `sh -c exec` both exec, so proc.pid is torchrun's own pid.
        proc = subprocess.Popen(in_namespace(cmd), cwd=REPO, start_new_session=True, stdout=f, stderr=subprocess.STDOUT)
    try:
        victim = worker_pid(proc.pid, rank=1)
        first = out / "checkpoints" / "step-00000010.pt"
        while not first.exists() and proc.poll() is None:
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
        assert not (out / "checkpoints" / f"step-{STEPS:08d}.pt").exists(), "the run finished before the kill"
        assert proc.wait(timeout=300) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return log.read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_nodes(script: Path, node_args: list[list[str]], nproc: int, env: dict[str, str],
              timeout: float = 300) -> list[str]:
    """One torchrun agent per entry of `node_args` (its node's arguments to `script`), meeting at 127.0.0.1 by
    static rendezvous on a free port, all started together; each agent's output, once every one exited 0.

    Not in a network namespace, so the workers reach servers the test runs on loopback; gloo is bound to
    loopback too."""
    port = free_port()
    procs, logs = [], []
    try:
        for node, args in enumerate(node_args):
            cmd = [str(TORCHRUN), f"--nnodes={len(node_args)}", f"--node-rank={node}", f"--nproc-per-node={nproc}",
                   "--master-addr=127.0.0.1", f"--master-port={port}", str(script), *args]
            logs.append(tempfile.TemporaryFile("w+"))  # not pipes: an agent must never block on a full one
            procs.append(subprocess.Popen(cmd, cwd=REPO, env={**env, "GLOO_SOCKET_IFNAME": "lo"},
                                          start_new_session=True, stdout=logs[-1], stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):  # then killed below, and reported with their logs
            for p in procs:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for node, (p, output) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"node {node} exited {p.returncode}:\n{output[-4000:]}"
    return outputs


# report.html, read back: its sections in order, and what lies outside them.

SECTIONS = ["summary", "funnel", "drops", "filter-changes", "languages", "lengths", "dedup", "samples", "throughput"]


class ReportSections(HTMLParser):
    """Text, headings and embedded PNGs of each <section id=...>."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.current = None
        self.in_heading = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.current = self.sections.setdefault(attrs["id"], {"heading": "", "text": "", "images": [], "cells": []})
        elif self.current is not None and tag == "h2":
            self.in_heading = True
        elif self.current is not None and tag == "img":
            self.current["images"].append(attrs["src"])
        elif self.current is not None and tag == "td":
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None
        if tag == "h2":
            self.in_heading = False
        if tag == "td" and self.current is not None:
            self.current["cells"].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.current is not None:
            self.current["heading" if self.in_heading else "text"] += data
        if self.cell is not None:
            self.cell.append(data)


def report_sections(html_text: str) -> dict[str, dict]:
    """Each <section id=...> of a report, by id."""
    parser = ReportSections()
    parser.feed(html_text)
    return parser.sections


def outside_sections(fragment: str) -> dict:
    """Text and table cells of markup that lies in no section (the alarm above the table of contents)."""
    parser = ReportSections()
    parser.current = {"heading": "", "text": "", "images": [], "cells": []}
    parser.feed(fragment)
    return parser.current
