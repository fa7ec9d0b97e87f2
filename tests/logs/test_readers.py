from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from toolkit.errors import InputError
from toolkit.logs import canonical_role, detect_format, read_log, synth
from toolkit.logs.readers.text import parse_line


def _check_core(run, n=3000, loss_name="loss"):
    loss = run.role("train_loss")
    assert loss is not None and loss.name == loss_name
    assert run.role("val_loss") is not None and run.role("lr") is not None
    return loss


def test_jsonl_fast_path_matches_json(tmp_path, healthy):
    path = synth.write_jsonl(tmp_path / "run.jsonl", healthy)
    run = read_log(path)
    assert run.format == "jsonl"
    loss = _check_core(run)
    np.testing.assert_array_equal(loss.steps, healthy["loss"][0])
    np.testing.assert_array_equal(loss.values, healthy["loss"][1])  # exact: repr round-trips
    val = run.role("val_loss")
    np.testing.assert_array_equal(val.steps, healthy["eval_loss"][0])
    assert run.roles == {
        "train_loss": "loss",
        "val_loss": "eval_loss",
        "lr": "learning_rate",
        "grad_norm": "grad_norm",
        "throughput": "tokens_per_sec",
    }


def test_jsonl_irregular_lines_fall_back(tmp_path):
    lines = [
        '{"step": 0, "loss": 2.0, "lr": 0.1}',
        '{"step": 1, "lr": 0.2, "loss": 3.0}',  # other key order
        '{"step": 2, "loss": NaN, "lr": 0.1}',
        '{"step": 3, "loss": null, "lr": 0.1}',
        '{"step": 4, "loss": 1.5, "lr": 0.1, "note": "x"}',
        '{"step": 5, "loss": 1e-3, "lr": -Infinity}',
        '{"step":6,"loss":1.25,"lr":0.1}',
        '{"step": 7, "loss": 1.0, "lr": 0.1}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n")
    run = read_log(path)
    loss = run.series["loss"]
    np.testing.assert_array_equal(loss.steps, np.arange(8))
    expected = [2.0, 3.0, np.nan, np.nan, 1.5, 1e-3, 1.25, 1.0]
    np.testing.assert_array_equal(loss.values, expected)
    assert run.series["lr"].values[1] == 0.2 and run.series["lr"].values[5] == -np.inf


def test_jsonl_truncated_last_line_warns_and_keeps_rest(tmp_path, healthy):
    path = synth.write_jsonl(tmp_path / "run.jsonl", healthy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # crash mid-write
    n_lines = data[: len(data) - 30].count(b"\n") + 1
    run = read_log(path)
    assert any(f":{n_lines}: truncated last line" in w for w in run.warnings)
    assert len(run.role("train_loss")) >= 2990


def test_jsonl_bad_middle_line_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [json.dumps({"step": i, "loss": 1.0 / (i + 1)}) for i in range(10)]
    rows[4] = rows[4][:-5]
    path.write_text("\n".join(rows) + "\n")
    run = read_log(path)
    assert any(w.endswith(":5: not valid JSON; skipped") for w in run.warnings)
    assert len(run.series["loss"]) == 9


@pytest.mark.parametrize("content", ["", "\n\n", "garbage {\n"])
def test_unreadable_jsonl_is_input_error(tmp_path, content):
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=str(path)):
        read_log(path)


def test_hf_trainer_state(tmp_path, healthy):
    synth.write_hf_state(tmp_path / "trainer_state.json", healthy)
    run = read_log(tmp_path)  # directory: finds trainer_state.json
    assert run.format == "hf_trainer_state"
    loss = _check_core(run)
    assert loss.steps[1] - loss.steps[0] == 10
    assert run.role("val_loss").name == "eval_loss"


def test_hf_truncated_reads_complete_entries(tmp_path, healthy):
    path = synth.write_hf_state(tmp_path / "trainer_state.json", healthy)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    run = read_log(path)
    assert run.warnings and "invalid JSON" in run.warnings[0] and str(path) in run.warnings[0]
    assert 100 < len(run.role("train_loss")) < 300


def test_hf_without_log_history_is_input_error(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text('{"global_step": 3}')
    with pytest.raises(InputError, match="log_history"):
        read_log(path)


def test_lightning_sparse_csv(tmp_path, healthy):
    path = synth.write_csv(tmp_path / "metrics.csv", healthy, lightning=True)
    run = read_log(path)
    assert run.format == "lightning"
    loss = _check_core(run, loss_name="train_loss")
    assert len(loss) == 3000
    assert run.role("lr").name == "lr-AdamW"
    assert run.role("val_loss").name == "val_loss" and len(run.role("val_loss")) == 15


def test_csv_wrong_columns_warns_with_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n0,2.0\n1,1.9,7\n2,1.8\n3,")
    run = read_log(path)
    assert any(":3: 3 columns, header has 2" in w for w in run.warnings)
    np.testing.assert_array_equal(run.series["loss"].steps, [0, 2])


def test_csv_without_numbers_is_input_error(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("name,comment\na,b\n")
    with pytest.raises(InputError, match="no numeric metric columns"):
        read_log(path)


@pytest.mark.parametrize("tensor_form", [False, True])
def test_tensorboard_keeps_all_events(tmp_path, tensor_form):
    pytest.importorskip("tensorboard")
    cols = synth.healthy_run(steps=12_000, seed=0, eval_every=1000)
    synth.write_tensorboard(
        tmp_path, {"loss": cols["loss"], "eval_loss": cols["eval_loss"]}, tensor_form
    )
    run = read_log(tmp_path)
    assert run.format == "tensorboard"
    loss = run.series["train/loss"]
    assert loss.role == "train_loss" and len(loss) == 12_000  # > EventAccumulator's 10,000
    np.testing.assert_allclose(loss.values, cols["loss"][1], rtol=1e-6)
    assert run.role("val_loss").name == "eval/loss"


def test_text_log(tmp_path, healthy):
    path = synth.write_text(tmp_path / "train.log", healthy)
    run = read_log(path)
    assert run.format == "text"
    loss = _check_core(run)
    assert len(loss) == 3000 and run.warnings  # the banner line is counted


def test_megatron_line():
    step, pairs = parse_line(
        " iteration      100/    1000 | consumed samples: 800 | learning rate: 1.000E-04 |"
        " lm loss: 2.345E+00 | grad norm: 1.234 |"
    )
    assert step == 100
    assert pairs["lm loss"] == 2.345 and pairs["learning rate"] == 1e-4
    assert canonical_role("lm loss") == "train_loss" and canonical_role("grad norm") == "grad_norm"


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("loss", "train_loss"),
        ("train_loss", "train_loss"),
        ("train/loss", "train_loss"),
        ("train_loss_step", "train_loss"),
        ("eval_loss", "val_loss"),
        ("val/loss", "val_loss"),
        ("validation_loss", "val_loss"),
        ("learning_rate", "lr"),
        ("lr-AdamW", "lr"),
        ("train/learning_rate", "lr"),
        ("grad_norm", "grad_norm"),
        ("train/grad_norm", "grad_norm"),
        ("tokens_per_sec", "throughput"),
        ("train_samples_per_second", "throughput"),
        ("eval_samples_per_second", None),
        ("epoch", None),
        ("accuracy", None),
    ],
)
def test_canonical_roles(name, role):
    assert canonical_role(name) == role


def test_duplicate_steps_keep_last_and_warn(tmp_path):
    path = tmp_path / "resumed.jsonl"
    rows = [
        {"step": s, "loss": float(v)}
        for s, v in [(0, 3), (1, 2), (2, 1.5), (1, 2.5), (2, 1.6), (3, 1.4)]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = read_log(path)
    np.testing.assert_array_equal(run.series["loss"].values, [3, 2.5, 1.6, 1.4])
    assert any("repeated step" in w for w in run.warnings)


def test_detect_format_by_content(tmp_path):
    (tmp_path / "a.log").write_text('{"step": 1, "loss": 2}\n')
    (tmp_path / "b.txt").write_text("step,loss\n1,2\n")
    (tmp_path / "c.out").write_text("step 1 loss=2\n")
    assert detect_format(tmp_path / "a.log") == "jsonl"
    assert detect_format(tmp_path / "b.txt") == "csv"
    assert detect_format(tmp_path / "c.out") == "text"


@pytest.mark.parametrize(
    "keys",
    [("acc1", "acc5"), ("loss", "lr")],
)
def test_jsonl_keys_differing_in_digits_or_order_stay_exact(tmp_path, keys):
    a, b = keys
    rows = [{"step": i, a: 0.5, b: 0.9} for i in range(50)]
    rows[3] = {"step": 3, b: 0.1, a: 0.2}  # swapped order
    rows[7] = {"step": 7, a + "1": 0.3, b: 0.4}  # a key that differs by a digit
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = read_log(path)
    assert run.series[a].values[3] == 0.2 and run.series[b].values[3] == 0.1
    assert 7 not in run.series[a].steps.tolist() and run.series[a + "1"].values.tolist() == [0.3]


def test_tensorboard_truncated_record_keeps_the_rest(tmp_path):
    pytest.importorskip("tensorboard")
    cols = synth.healthy_run(steps=500, seed=0)
    synth.write_tensorboard(tmp_path, {"loss": cols["loss"]})
    (event_file,) = list(tmp_path.iterdir())
    event_file.write_bytes(event_file.read_bytes()[:-7])  # crash mid-record
    assert len(read_log(tmp_path).series["train/loss"]) == 499


def _tricky_jsonl(path, n=6000, seed=1):
    """Template lines mixed with every kind of line the fast path must hand to json.loads."""
    rng = np.random.default_rng(seed)
    odd = [
        '{{"step": {i}, "loss": NaN, "lr": 1e-4, "grad_norm": Infinity}}',
        '{{"step": {i}, "eval_loss": 0.5}}',
        '{{"step": {i}, "loss": 01, "lr": 1, "grad_norm": 2}}',  # invalid JSON
        '{{"step": {i}, "loss1": 1.5, "lr": 1, "grad_norm": 2}}',  # key differs by a digit
        '{{"step": {i}, "loss": "a:b", "lr": 1, "grad_norm": 2}}',  # colon in a string
        '{{"step": {i}, "loss": 1.5, "lr": 1, "grad_norm": 2}}\r',
        '{{"step": {i},  "loss": 1.5, "lr": 1, "grad_norm": 2}}',  # other spacing
        '{{"step": {i}, "loss": -0, "lr": -0.0, "grad_norm": 1e400}}',
        '{{"step": {i}, "loss": 1.5, "lr": 2, "grad_norm": 12345678901234567890123}}',
        '{{"step": {i}, "loss": 0.0025935401432800769033, "lr": 1E-5, "grad_norm": 1e+2}}',
        "garbage : {{ ",
        "",
        "[1, 2]",
    ]
    lines = []
    for i in range(n):
        if rng.random() < 0.85:
            row = {"step": i, "loss": float(rng.random() * 5), "lr": float(rng.random() * 1e-4)}
            row["grad_norm"] = float(rng.exponential())
            lines.append(json.dumps(row))
        else:
            lines.append(odd[int(rng.integers(len(odd)))].format(i=i))
    path.write_text("\n".join(lines) + '\n{"step": 99999, "loss": 1.2')  # half-written tail
    return path


def _parser(monkeypatch, which):
    """Select the JSONL block parser: the C accelerator or the numpy path."""
    from toolkit.logs.readers import jsonl

    if which == "numpy":
        monkeypatch.setattr(jsonl, "_accel", None)
    elif jsonl._accel is None:
        if shutil.which("cc") or shutil.which("gcc"):
            pytest.fail("a C compiler is present but toolkit.logs.readers._jsonl_c was not built")
        pytest.skip("no C compiler: the optional JSONL accelerator is not built")
    return jsonl


def _count_fast_lines(monkeypatch, jsonl) -> list[int]:
    """Record how many lines each block parser call took on the fast path."""
    parsed: list[int] = []
    real_block = jsonl._parse_block

    def spy(text, tpl):
        result = real_block(text, tpl)
        parsed.append(result[0].size)
        return result

    monkeypatch.setattr(jsonl, "_parse_block", spy)
    return parsed


@pytest.mark.parametrize("which", ["c", "numpy"])
@pytest.mark.parametrize("block", [1 << 20, 4096, 333])
def test_jsonl_fast_path_equals_plain_json(tmp_path, monkeypatch, block, which):
    """Same series, values (bit for bit) and warnings as reading every line with json.loads."""
    jsonl = _parser(monkeypatch, which)
    path = _tricky_jsonl(tmp_path / "tricky.jsonl")
    monkeypatch.setattr(jsonl, "BLOCK", block)
    parsed = _count_fast_lines(monkeypatch, jsonl)
    fast = read_log(path)
    assert sum(parsed) > 4500  # the template lines really took the fast path
    monkeypatch.setattr(jsonl, "_template", lambda lines: None)  # no template: all json.loads
    plain = read_log(path)
    assert fast.series.keys() == plain.series.keys()
    for name, series in fast.series.items():
        np.testing.assert_array_equal(series.steps, plain.series[name].steps)
        np.testing.assert_array_equal(series.values, plain.series[name].values)
        assert np.array_equal(np.signbit(series.values), np.signbit(plain.series[name].values))
    assert fast.warnings == plain.warnings
    assert any("truncated last line" in w for w in fast.warnings)
    assert len(fast.series["loss"]) > 4000


@pytest.mark.parametrize("which", ["c", "numpy"])
def test_jsonl_numbers_match_json_on_both_paths(tmp_path, monkeypatch, which):
    """Every number of the parser fuzz corpus, one per line: both block parsers agree with json."""
    from tests.logs.test_numbers import EDGES, _random_texts, _reference

    jsonl = _parser(monkeypatch, which)
    texts = EDGES + _random_texts(20_000, 5)
    path = tmp_path / "numbers.jsonl"
    path.write_bytes(b"".join(b'{"step": %d, "x": %s}\n' % (i, t) for i, t in enumerate(texts)))
    monkeypatch.setattr(
        jsonl, "_template", lambda lines: (["step", "x"], [b'{"step": ', b', "x": ', b"}"])
    )
    parsed = _count_fast_lines(monkeypatch, jsonl)
    run = read_log(path)
    assert sum(parsed) > 0.3 * len(texts)  # wide exponents go to json.loads on the C path
    got = dict(zip(run.series["x"].steps.tolist(), run.series["x"].values.tolist(), strict=True))
    checked = 0
    for i, text in enumerate(texts):
        expected = _reference(text)
        if expected is None:
            continue  # not a JSON number: json.loads skips or keeps the line, either way not ours
        assert got[i] == expected and np.signbit(got[i]) == np.signbit(expected), (text, got[i])
        checked += 1
    assert checked > 10_000


def test_jsonl_accelerator_rejects_bad_arguments(monkeypatch):
    jsonl = _parser(monkeypatch, "c")
    with pytest.raises(ValueError, match="need 2..65 tokens"):
        jsonl._accel.parse_block(b"{}\n", (b"{",))
    with pytest.raises(TypeError, match="tokens must be bytes"):
        jsonl._accel.parse_block(b"{}\n", ("{", "}"))
    fast, values, other, n = jsonl._accel.parse_block(b'{"a": 1}\n{"a": x}\n', (b'{"a": ', b"}"))
    assert (bytes(fast), n, other) == ((0).to_bytes(8, "little"), 2, [(1, 9, 17)])
    assert np.frombuffer(values).tolist() == [1.0]


def test_string_nan_and_inf_are_values(tmp_path):
    """Strict-JSON writers log non-finite floats as strings: they are values, not skipped."""
    from toolkit.logs import analyze

    rows = [{"step": i, "loss": 2.0 - i * 0.01, "grad_norm": 1.0} for i in range(1, 40)]
    rows[20]["loss"] = "nan"
    rows[25]["grad_norm"] = "Infinity"
    rows[30]["loss"] = "-inf"
    path = tmp_path / "strings.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = read_log(path)
    loss = run.series["loss"]
    assert loss.values.size == 39 and np.isnan(loss.values[20]) and loss.values[30] == -np.inf
    assert run.series["grad_norm"].values[25] == np.inf
    found = {(f.kind, f.evidence.get("metric", "")) for f in analyze(run).findings}
    messages = " ".join(f.message for f in analyze(run).findings)
    assert (
        "loss is nan first at step 21" in messages
        and "grad_norm is inf first at step 26" in messages
    )
    assert found
    hf = tmp_path / "trainer_state.json"
    hf.write_text(
        json.dumps({"log_history": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": "NaN"}]})
    )
    assert np.isnan(read_log(hf).series["loss"].values[1])
