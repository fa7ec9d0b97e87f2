"""Completeness gates PL016..PL023: when each applies, what satisfies it, and the skill's
worked example still linting clean."""

from __future__ import annotations

import re
from pathlib import Path

from toolkit.plan import lint_text
from toolkit.plan.rules import parse_codes

ROOT = Path(__file__).resolve().parents[2]
GOOD = (Path(__file__).with_name("fixtures") / "good_llama3_8b_lora.md").read_text()
SERVE = (Path(__file__).with_name("fixtures") / "good_lora_merge_serve_vllm.md").read_text()


def codes(text: str, only: str) -> list[str]:
    return [f.code for f in lint_text(text, parse_codes([only], "--select"))]


def test_export_gates_apply_only_to_adapters_and_quantization() -> None:
    plain = "# T\n## Steps\n### Step 1: Train\nFull fine-tune in bf16. If it fails: stop.\n"
    assert codes(plain, "PL016") == codes(plain, "PL017") == []
    qlora = plain.replace("Full fine-tune in bf16", "QLoRA with 4-bit NF4 weights")
    assert codes(qlora, "PL016") == ["PL016"]
    gguf = qlora + "### Step 2: Export\nConvert to GGUF with convert_hf_to_gguf.py.\n"
    assert codes(gguf, "PL016") == [] and codes(gguf, "PL017") == ["PL017"]
    tried = gguf + "### Step 3: Try it\nLoad the exported GGUF and generate from 5 prompts.\n"
    assert codes(tried, "PL017") == []


def test_serving_gate_needs_a_metric_with_a_number() -> None:
    assert codes(SERVE, "PL018") == []
    rdzv = GOOD  # '--rdzv-endpoint' in a torchrun line is not serving
    assert "rdzv-endpoint" in rdzv and codes(rdzv, "PL018") == []
    no_number = SERVE.replace("p95 latency is below\n800 ms", "p95 latency is low")
    no_number = no_number.replace("exact match is at least 0.60", "exact match is good")
    assert codes(no_number, "PL018") == ["PL018"]


def test_sweep_accepts_a_reason_for_no_sweep() -> None:
    text = GOOD.replace(
        "- learning rate: 1e-4, 2e-4, 4e-4\n- warm-up steps: 50, 100, 200\n",
        "No sweep because the settings are the published ones and the budget allows one run.\n",
    )
    assert codes(text, "PL021") == []
    assert codes(text.replace("## Parameters to sweep", "## Notes"), "PL021") == ["PL021"]


def test_estimate_must_come_from_the_estimator() -> None:
    assert codes(GOOD, "PL022") == []
    unnamed = re.sub(r"From `python -m toolkit.compute time[^`]*`", "By hand", GOOD)
    found = lint_text(unnamed, parse_codes(["PL022"], "--select"))
    assert [f.code for f in found] == ["PL022"] and "names no toolkit estimator" in found[0].message
    broken = GOOD.replace("--preset llama-3-8b --tokens", "--preset no-such-model --tokens")
    found = lint_text(broken, parse_codes(["PL022"], "--select"))
    assert found and "fails" in found[0].message
    launcher = GOOD.replace("python -m toolkit.compute time", "labcoat compute time")
    assert codes(launcher, "PL022") == []
    cpu = "# CPU plan\n## Steps\n### Step 1: Fit\nOn a laptop. If it fails: stop.\n"
    assert codes(cpu, "PL022") == []  # not a GPU plan


def test_env_detection_forms() -> None:
    bare = "# T\n## Steps\n### Step 1: Run\n```bash\npython train.py\n```\n"
    assert codes(bare, "PL023") == ["PL023"]
    for line in ("conda activate ft", "uv run python train.py", "test -n \"$VIRTUAL_ENV\"",
                 "module load python/3.11"):  # fmt: skip
        assert codes(bare.replace("```bash\n", f"```bash\n{line}\n"), "PL023") == [], line
    assert codes(bare.replace("```bash", "```python"), "PL023") == []  # no command runs


def test_failure_handling_is_per_step() -> None:
    text = "# T\n## Steps\n### Step 1: A\nIf it fails: retry once.\n### Step 2: B\nRun it.\n"
    found = lint_text(text, parse_codes(["PL019"], "--select"))
    assert [(f.code, f.line) for f in found] == [("PL019", 5)]


def test_skill_worked_example_lints_clean() -> None:
    page = (ROOT / "skills/grounded-implementation-plan/references/worked-example.md").read_text()
    plan = re.search(r"````markdown\n(.*?)\n````", page, re.S).group(1)
    assert lint_text(plan) == []
