"""Unit checks of each plan-lint gate on small plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.plan import lint_text
from toolkit.plan.document import parse, quotes, urls
from toolkit.plan.rules import parse_codes

GOOD = (Path(__file__).with_name("fixtures") / "good_llama3_8b_lora.md").read_text()


def codes(text: str, only: str | None = None) -> list[str]:
    select = parse_codes([only], "--select") if only else None
    return [f.code for f in lint_text(text, select)]


def lines_of(text: str, code: str) -> list[int]:
    return [f.line for f in lint_text(text) if f.code == code]


# ----------------------------------------------------------------------------- steps


def test_step_headings_forms() -> None:
    doc = parse("# T\n## 1. Data\ntext\n### Step 2: Train\n#### detail\nmore\n## Results\n")
    assert [(s.number, s.start, s.end) for s in doc.steps] == [("1", 2, 6), ("2", 4, 6)]


def test_list_steps_only_under_a_steps_heading() -> None:
    text = "# T\n## Success criteria\n1. loss <= 2\n## Procedure\n1. first\n   more\n2. second\n"
    doc = parse(text)
    assert [(s.number, s.start, s.end) for s in doc.steps] == [("1", 5, 6), ("2", 7, 7)]


def test_headings_inside_code_are_not_steps() -> None:
    doc = parse("# T\n```\n### Step 1: not a step\n```\n")
    assert doc.steps == [] and len(doc.code_blocks) == 1


# ----------------------------------------------------------------------------- citations


def test_url_specificity() -> None:
    doc = parse(
        "a https://example.com b https://example.com/ c https://example.com/page "
        "d https://example.com/#x e [t](https://example.com/?id=3).\n"
    )
    assert [(u.url, u.specific) for u in urls(doc)] == [
        ("https://example.com", False),
        ("https://example.com/", False),
        ("https://example.com/page", True),
        ("https://example.com/#x", True),
        ("https://example.com/?id=3", True),
    ]


def test_quote_forms_and_length() -> None:
    doc = parse(
        'x "four words only here" y\n“five curly quoted words here” z\n'
        'start "a quote that wraps\nacross two lines" end\n\n> one two three\n> four five\n'
    )
    found = quotes(doc, 1, 7)
    assert [q for _, q in found] == [
        "five curly quoted words here",
        "a quote that wraps\nacross two lines",
        "one two three four five",
    ]


def test_quote_must_be_near_the_citation() -> None:
    far = "\n".join(["text"] * 5)
    text = (
        "## Steps\n### Step 1: A\n[doc](https://example.com/page)\n"
        + far
        + '\n"these five words are quoted"\n'
    )
    assert codes(text, "PL004") == ["PL004"]
    near = (
        '## Steps\n### Step 1: A\n[doc](https://example.com/page) "these five words are quoted"\n'
    )
    assert codes(near, "PL002,PL003,PL004") == []


# ----------------------------------------------------------------------------- dependencies


@pytest.mark.parametrize(
    ("snippet", "flagged"),
    [
        ("```bash\npip install torch==2.4.1 'peft==0.12.0'\n```", []),
        ("```bash\npip install torch transformers==4.44.2\n```", ["torch"]),
        ("```bash\npip3 install -U -r requirements.txt accelerate~=0.33\n```", ["accelerate"]),
        (
            "```sh\nuv pip install --index-url https://x.org/simple vllm>=0.5 && echo ok\n```",
            ["vllm"],
        ),
        ("Run `pip install datasets` first.", ["datasets"]),
        ("```bash\npip install -e . ./pkg git+https://github.com/a/b\n```", []),
        ("```requirements\ntorch==2.4.1\nnumpy\n# comment\n```", ["numpy"]),
        (
            "## Dependencies\n- `peft`\n- transformers >= 4.40\n- Python 3.11\n- All pinned below",
            ["peft", "transformers"],
        ),
        ("## Dependencies\n- torch==2.* (any 2.x)\n", ["torch"]),
    ],
)
def test_dependency_pins(snippet: str, flagged: list[str]) -> None:
    messages = [f.message for f in lint_text(snippet) if f.code == "PL005"]
    assert len(messages) == len(flagged), messages
    for name, message in zip(flagged, messages, strict=True):
        assert message.startswith(name)


# ----------------------------------------------------------------------------- VRAM


def test_vram_lines_format_and_units() -> None:
    ok = (
        "GPU plan.\n## GPU memory budget\n- Weights: 8.03e9 params × 2 bytes = 16.06 GB\n"
        "- Optimizer: 2048 MiB\n- Activations: 10 GB (4 GB with checkpointing)\n"
        "- **Total**: 28.2 GB per GPU (fits in 80 GB)\n"
    )
    assert codes(ok, "PL006,PL007") == []
    bad = ok.replace("28.2 GB per GPU", "40 GB per GPU")
    assert lines_of(bad, "PL007") == [6]


def test_vram_two_tables_checked_separately() -> None:
    table = "| part | GiB |\n|---|---|\n| weights | 10 |\n| acts | 5 |\n| total | {t} |\n"
    text = "GPU.\n## VRAM\n" + table.format(t=15) + "\ntext\n\n" + table.format(t=20)
    assert lines_of(text, "PL007") == [15]


def test_vram_missing_only_for_gpu_plans() -> None:
    assert codes("# CPU plan\nNo accelerator.\n", "PL006") == []
    assert codes("# Plan\nTrain on one GPU.\n", "PL006") == ["PL006"]
    assert codes("# Plan\nOne GPU.\n## VRAM\nWeights: 16 GB\n", "PL006") == ["PL006"]


# ----------------------------------------------------------------------------- MFU


def test_mfu_per_gpu_throughput_and_named_gpu_peak() -> None:
    # 6 * 7e9 * 3000 / 989.4e12 = 12.7%
    text = (
        "## Throughput\nModel: 7B parameters on H100 SXM, bf16.\n"
        "Expected 3,000 tokens/s per GPU, so MFU ≈ 12.7%.\n"
    )
    assert codes(text, "PL008,PL009") == []
    assert codes(text.replace("12.7%", "30%"), "PL008") == ["PL008"]


def test_mfu_ambiguous_gpu_is_unverifiable_and_targets_are_not_claims() -> None:
    text = "## Throughput\n7B parameters, 3,000 tokens/s per GPU on H100: MFU = 12.7%.\n"
    findings = [f for f in lint_text(text) if f.code in ("PL008", "PL009")]
    assert [f.code for f in findings] == ["PL009"]
    assert "ambiguous" in findings[0].message and findings[0].severity == "warning"
    assert codes("## Success criteria\n- MFU >= 35%\n", "PL008,PL009") == []


def test_mfu_ignores_trainable_params() -> None:
    text = (
        "## MFU\n42M trainable parameters; base 8B parameters; 24,000 tokens/s on 8 GPUs; "
        "peak 989.4 TFLOP/s.\nMFU = 14.6%\n"
    )
    assert codes(text, "PL008,PL009") == []


# ----------------------------------------------------------------------------- LoRA


@pytest.mark.parametrize(
    ("config", "severity"),
    [
        ("LoRA with r=16, lora_alpha=32", None),
        ("LoRA with r=16, lora_alpha=16", None),
        ("LoRA with r=16, lora_alpha=8", "warning"),
        ("LoRA with r=8, lora_alpha=24", "warning"),
        ("LoRA with r=64, lora_alpha=16", "error"),
        ("LoRA with rank 4 and alpha 32", "error"),
        ("LoRA\n| setting | value |\n|---|---|\n| r | 16 |\n| alpha | 32 |\n", None),
        ("LoRA, alpha/r = 2 with r: 8 and alpha: 16", None),
    ],
)
def test_lora_ratio(config: str, severity: str | None) -> None:
    found = [f for f in lint_text(config) if f.code == "PL010"]
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_lora_rule_needs_lora() -> None:
    assert codes("Adam with alpha = 100 and r = 1", "PL010") == []


# ----------------------------------------------------------------------------- text gates


def test_success_criteria_forms() -> None:
    assert codes("# P\n", "PL011") == ["PL011"]
    assert codes("## Validation\n- accuracy at least 0.9\n", "PL011") == []
    assert codes("## Validation\n- eval loss ≤ 1.3\n", "PL011") == []
    assert codes("## Success criteria\n- 3 runs look good\n", "PL011") == ["PL011"]


def test_vague_phrases_outside_quotes_and_code() -> None:
    text = (
        'Tune this later, etc.\nThe doc says "retry if necessary when the node is busy".\n'
        "> set it as appropriate\n`--lr as needed`\n```\n# adjust as needed\n```\nTBD.\n"
    )
    assert lines_of(text, "PL013") == [1, 1, 8]


def test_stub_code_forms() -> None:
    text = (
        "```python\ndef f():\n    ...\n\ndef g(): pass\nraise NotImplementedError\nx = 1\n```\n"
        "```yaml\na: 1\n...\n```\nprose pass TODO\n"
    )
    assert lines_of(text, "PL014") == [3, 5, 6]


def test_multi_gpu_detection_and_launch_lines() -> None:
    assert codes("Train on one GPU with `python train.py`.", "PL015") == []
    assert codes("Train on 1–8 GPUs.", "PL015") == ["PL015"]
    assert codes("Train on 4 × A100.\n`torchrun --nproc-per-node 4 t.py`", "PL015") == ["PL015"]
    both = "Multi-node run.\n```\nsbatch job.sh\ntorchrun --nnodes 2 t.py\n```\n"
    assert codes(both, "PL015") == []
    assert codes("Prose mentions sbatch and torchrun on 2 nodes.", "PL015") == ["PL015"]


def test_select_and_ignore_codes() -> None:
    assert parse_codes(["PL01"], "--select") == {f"PL01{i}" for i in range(10)}
    assert parse_codes(["pl001, PL002", "PL003"], "--select") == {"PL001", "PL002", "PL003"}
    assert parse_codes(None, "--select") is None
    with pytest.raises(InputError, match="--ignore: 'PL999' matches no rule"):
        parse_codes(["PL999"], "--ignore")
    bad = GOOD.replace("peft==0.12.0", "peft")
    assert [f.code for f in lint_text(bad)] == ["PL005"]
    assert lint_text(bad, ignore={"PL005"}) == []
