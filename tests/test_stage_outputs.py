"""Every stage's committed files are byte-identical to the recorded ones for a fixed input
(tests/data/stage-outputs/input: English, German, Russian and Chinese documents with exact and near
duplicates, junk, e-mail and IP addresses, malformed and empty records), so a change to how stages are
run cannot silently change what they write.

A change meant to alter outputs regenerates the record, to be reviewed in the diff:
    CORPUSFORGE_RECORD_OUTPUTS=1 python -m pytest tests/test_stage_outputs.py
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

DATA = Path(__file__).parent / "data" / "stage-outputs"
RECORD = DATA / "outputs.json"
# stats.json and manifest.json hold timings and the whole config (which gains keys as stages are added);
# their counts are compared below, their bytes are not.
UNCOMPARED = {"stats.json", "manifest.json", "_SUCCESS", "_lock"}
COUNTS = ("input", "kept", "dropped", "rejected")


def committed_digests(out: Path) -> dict[str, str]:
    digests = {}
    for stage_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        listing = json.loads((stage_dir / "_SUCCESS").read_text())["files"]
        names = [n for files in listing.values() for n in files]
        names += [p.name for p in stage_dir.iterdir() if p.is_file() and p.name not in UNCOMPARED]
        for name in sorted(set(names)):
            digests[f"{stage_dir.name}/{name}"] = hashlib.sha256((stage_dir / name).read_bytes()).hexdigest()
    return digests


def test_every_stage_writes_the_recorded_bytes_for_a_fixed_input(fixed_input_run):
    out, summary = fixed_input_run
    got = {"files": committed_digests(out), "counts": {s["stage"]: {k: s[k] for k in COUNTS} for s in summary}}
    if os.environ.get("CORPUSFORGE_RECORD_OUTPUTS"):
        RECORD.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(RECORD.read_text())
    assert got["counts"] == recorded["counts"]
    assert got["files"] == recorded["files"]
