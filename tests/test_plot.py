import json
import struct

from trainer.plot import main, read_metrics, series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metrics(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82")
    return width, height


def _rows():
    rows = []
    for step in range(10, 101, 10):
        row = {"step": step, "tokens": step * 4096, "train_loss": 8.0 - step / 20, "lr": 1e-3 * min(1, step / 30),
               "tokens_per_s": 5000.0 + step}
        if step % 50 == 0:
            row.update(val_loss=7.9 - step / 25, val_bpb=3.0 - step / 100)
        rows.append(row)
    return rows


def test_plot_writes_a_valid_png_per_curve(tmp_path):
    _metrics(tmp_path / "metrics.jsonl", _rows())
    written = main([str(tmp_path)])
    assert sorted(p.name for p in written) == ["loss.png", "lr.png", "tokens_per_s.png", "val_bpb.png"]
    for path in written:
        width, height = _png_size(path)
        assert width > 100 and height > 100


def test_plot_skips_val_curves_of_a_run_that_never_evaluated(tmp_path):
    rows = [{k: v for k, v in r.items() if not k.startswith("val_")} for r in _rows()]
    _metrics(tmp_path / "metrics.jsonl", rows)
    out = tmp_path / "plots"
    written = main([str(tmp_path), "--out", str(out)])
    assert sorted(p.name for p in written) == ["loss.png", "lr.png", "tokens_per_s.png"]
    assert not (out / "val_bpb.png").exists()


def test_series_takes_eval_rows_only_and_sorts_by_step(tmp_path):
    rows = _rows()
    _metrics(tmp_path / "metrics.jsonl", list(reversed(rows)))
    steps, values = series(read_metrics(tmp_path / "metrics.jsonl"), "val_bpb")
    assert steps == [50, 100]
    assert values == [2.5, 2.0]


def test_series_leaves_out_a_step_whose_windows_were_all_skipped(tmp_path):
    rows = _rows()
    rows[2]["train_loss"] = None  # what the trainer logs when every window of a step came from a skipped shard
    _metrics(tmp_path / "metrics.jsonl", rows)
    steps, values = series(read_metrics(tmp_path / "metrics.jsonl"), "train_loss")
    assert steps == [10, 20, 40, 50, 60, 70, 80, 90, 100]
    assert len(values) == 9 and None not in values
