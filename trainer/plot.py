"""Training curves from a run directory's metrics.jsonl, as PNG files next to it.

    python -m trainer.plot OUT        # writes OUT/loss.png, OUT/val_bpb.png, OUT/lr.png, OUT/tokens_per_s.png,
                                      # OUT/tokens_by_source.png, OUT/val_bpb_by_source.png, OUT/val_bpb_by_lang.png

Rows come from trainer/train.py: every row has step and train_loss; log rows add lr, tokens_per_s and
tokens_by_source, eval rows add val_loss, val_bpb, val_bpb_by_source and val_bpb_by_lang. A curve is
drawn from the rows that carry its key (a mapping's key: one curve per entry, `key/name`), so a run
that never evaluated still gets its loss and learning-rate plots.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

# file stem -> (title, y label, [(metrics key, legend label)])
PLOTS = {
    "loss": ("Loss", "cross-entropy (nats/token)", [("train_loss", "train"), ("val_loss", "val")]),
    "val_bpb": ("Validation bits per byte", "bits per byte", [("val_bpb", "val")]),
    "lr": ("Learning rate", "lr", [("lr", "lr")]),
    "tokens_per_s": ("Throughput", "tokens/s", [("tokens_per_s", "tokens/s")]),
}
# file stem -> (title, y label) of a mapping key: one curve per source or language it holds
MAPPINGS = {
    "tokens_by_source": ("Training tokens by source", "tokens"),
    "val_bpb_by_source": ("Validation bits per byte by source", "bits per byte"),
    "val_bpb_by_lang": ("Validation bits per byte by language", "bits per byte"),
}


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of metrics.jsonl in step order (blank lines skipped)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["step"])


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the rows that carry `key`; `mapping/name` is an entry of a mapping such as
    tokens_by_source."""
    outer, _, inner = key.partition("/")
    values = [(r["step"], r.get(outer)) for r in rows]
    if inner:
        values = [(step, v.get(inner) if isinstance(v, dict) else None) for step, v in values]
    pts = [(step, v) for step, v in values if v is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def _plots(rows: list[dict]) -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
    """PLOTS, and one plot per mapping of MAPPINGS with a curve per name the rows hold."""
    plots = dict(PLOTS)
    for key, (title, ylabel) in MAPPINGS.items():
        names = sorted({name for r in rows if isinstance(r.get(key), dict) for name in r[key]})
        plots[key] = (title, ylabel, [(f"{key}/{name}", name) for name in names])
    return plots


def plot(rows: list[dict], out_dir: str | Path, dpi: int = 100) -> list[Path]:
    """Write one PNG per curve that has data; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (title, ylabel, curves) in _plots(rows).items():
        lines = [(label, *series(rows, key)) for key, label in curves]
        lines = [line for line in lines if line[1]]
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, steps, values in lines:
            ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(lines) > 1:
            ax.legend()
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(description="Plot train/val loss, val bits per byte (in all, by source, by language), "
                                "learning rate, tokens/s and tokens by source against step from RUN/metrics.jsonl "
                                "into PNG files.")
    p.add_argument("run", type=Path, help="training run directory (holds metrics.jsonl)")
    p.add_argument("--out", type=Path, help="directory for the PNGs (default: the run directory)")
    args = p.parse_args(argv)
    metrics = args.run / "metrics.jsonl"
    if not metrics.exists():
        p.error(f"{metrics} not found")
    written = plot(read_metrics(metrics), args.out or args.run)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
