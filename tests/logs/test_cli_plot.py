from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit.logs import synth
from toolkit.logs.__main__ import main


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        from toolkit.cli import run

        run(main, "python -m toolkit.logs", list(argv))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def faulty(tmp_path):
    cols = synth.healthy_run(steps=3000, seed=1)
    synth.inject_spike(cols, 1500)
    synth.inject_nan(cols, 2600)
    return synth.write_jsonl(tmp_path / "faulty.jsonl", cols)


@pytest.fixture
def clean(tmp_path):
    return synth.write_jsonl(tmp_path / "clean.jsonl", synth.healthy_run(steps=3000, seed=1))


def test_analyze_exit_codes_and_json(capsys, faulty, clean):
    code, out, _ = _cli(capsys, "analyze", str(faulty), "--format", "json")
    assert code == 1
    data = json.loads(out)
    kinds = {(f["kind"], f["step_start"]) for f in data["findings"]}
    assert ("loss_spike", 1500) in kinds and ("nan_inf", 2600) in kinds
    assert data["roles"]["train_loss"] == "loss"
    code, out, _ = _cli(capsys, "analyze", str(clean))
    assert code == 0 and "0 error(s)" in out


def test_config_yaml(capsys, tmp_path, faulty):
    cfg = tmp_path / "t.yaml"
    cfg.write_text("spike_z: 1.0e9\nspike_factor_max: 1.0e9\n")
    code, out, _ = _cli(capsys, "analyze", str(faulty), "--config", str(cfg), "--format", "json")
    assert not [f for f in json.loads(out)["findings"] if f["kind"] == "loss_spike"]
    cfg.write_text("spike_zz: 3\n")
    code, _, err = _cli(capsys, "analyze", str(faulty), "--config", str(cfg))
    assert code == 2 and "unknown threshold 'spike_zz'" in err and str(cfg) in err


def test_input_errors_exit_2_naming_file(capsys, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = _cli(capsys, "analyze", str(empty))
    assert code == 2 and str(empty) in err and "empty" in err
    bad = tmp_path / "trainer_state.json"
    bad.write_text('{"log_history": [')
    code, _, err = _cli(capsys, "summary", str(bad))
    assert code == 2 and f"{bad}:1" in err
    code, _, err = _cli(capsys, "summary", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "missing" in err


def test_truncated_file_still_analyzed_with_warning(capsys, tmp_path, faulty):
    data = faulty.read_bytes()
    faulty.write_bytes(data[:-25])
    code, out, _ = _cli(capsys, "analyze", str(faulty))
    assert code == 1 and "truncated last line" in out and "loss_spike at step 1500" in out


def test_summary(capsys, clean):
    code, out, _ = _cli(capsys, "summary", str(clean), "--format", "json")
    assert code == 0
    rows = {r["metric"]: r for r in json.loads(out)["metrics"]}
    assert rows["loss"]["points"] == 3000 and rows["loss"]["step_last"] == 2999
    assert rows["eval_loss"]["role"] == "val_loss"


def test_compare_cli(capsys, tmp_path, clean):
    cols = synth.healthy_run(steps=3000, seed=1)
    cols["loss"][1][1000:] *= 1.5
    worse = synth.write_jsonl(tmp_path / "worse.jsonl", cols)
    code, out, _ = _cli(capsys, "compare", str(worse), str(clean), "--tolerance", "0.1")
    assert code == 1 and "ALERT from step 100" in out
    code, out, _ = _cli(capsys, "compare", str(clean), str(clean))
    assert code == 0 and "0 alert(s)" in out
    code, _, err = _cli(capsys, "compare", str(clean), str(clean), "--tolerance", "x")
    assert code == 2 and "--tolerance" in err


def test_plot_png_is_not_blank(capsys, tmp_path, faulty):
    pytest.importorskip("matplotlib")
    out_png = tmp_path / "plot.png"
    code, _, _ = _cli(capsys, "analyze", str(faulty), "--plot", str(out_png))
    assert code == 1 and out_png.stat().st_size > 20_000
    import matplotlib.image as mpimg

    img = mpimg.imread(out_png)
    assert img.shape[0] > 500 and img.shape[1] > 800
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a blank canvas
    # the finding colours are drawn (red NaN span, orange spike line)
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.sum() > 50
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50
