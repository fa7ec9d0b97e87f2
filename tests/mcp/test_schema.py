"""Tool arguments -> argv -> the CLI's own parser gives back the same values (no server)."""

from __future__ import annotations

import pytest

from toolkit.mcp import schema, tools


@pytest.fixture(scope="module")
def table():
    return {v.name: tools.load(v) for v in tools.VERBS if v.name in NAMES}


NAMES = ("compute_memory", "hardware_launch", "runtime_validate", "runs_start", "logs_compare")


def _parsed(tool, arguments):
    argv = tool.argv(arguments)[len(tool.verb.path) :]
    return vars(tool.parser.parse_args(argv))


def test_values_round_trip_through_the_cli_parser(table, tmp_path):
    memory = {"preset": "gpt2", "gpus": 16, "zero_stage": 2, "overhead_gib": 0.5,
              "no_dropout": True, "lora_targets": "q_proj,v_proj", "seq_len": 4096.0}  # fmt: skip
    ns = _parsed(table["compute_memory"], memory)
    assert {k: ns[k] for k in memory} == {**memory, "seq_len": 4096}
    launch = {"script": "train.py", "script_args": ["--lr", "-3e-4"], "nodes": 2, "env": "slurm"}
    ns = _parsed(table["hardware_launch"], launch)
    assert ns["script"] == "train.py" and ns["nodes"] == 2
    assert [a for a in ns["script_args"] if a != "--"] == ["--lr", "-3e-4"]
    ns = _parsed(table["runs_start"], {"names": ["a", "b"], "wait": True, "retry_delay": 2})
    assert ns["names"] == ["a", "b"] and ns["wait"] is True and ns["retry_delay"] == 2.0
    run, base = tmp_path / "r.jsonl", tmp_path / "b.jsonl"
    run.write_text("{}\n")
    base.write_text("{}\n")
    args = {"run": str(run), "baseline": str(base), "tolerance": ["loss=0.05", "0.2"]}
    ns = _parsed(table["logs_compare"], args)
    assert ns["tolerance"] == [("loss", 0.05), (None, 0.2)]


def test_runtime_validation_script_args_reach_the_script(table):
    tool = table["runtime_validate"]
    argv = tool.argv({"script": "train.py", "script_args": ["--epochs", "1"], "steps": 3})
    assert argv[-3:] == ["--", "--epochs", "1"]  # l0_runner hands what follows '--' to --script
    with pytest.raises(schema.ArgumentProblem, match="entry"):
        tool.argv({"script": "train.py", "entry": "m:f"})  # mutually exclusive, named


def test_schema_defaults_and_required_come_from_the_parser(table):
    props = table["runs_start"].input_schema["properties"]
    assert table["runs_start"].input_schema["required"] == ["names"]
    assert props["names"]["minItems"] == 1
    assert props["retry_delay"]["exclusiveMinimum"] == 0
    memory = table["compute_memory"].input_schema
    assert "exactly one of config, preset is required" in memory["description"]
