"""Resume equivalence: k steps, checkpoint, m steps in a fresh process vs the uninterrupted run."""

import json

import torch

from toolkit.profiling.validator import runner as l0_runner
from toolkit.profiling.validator.resume import check_resume

FIX = "tests.profiling.fixtures.entries"


def test_catches_a_scheduler_missing_from_the_checkpoint():
    good, result = check_resume(f"{FIX}:resume_complete", torch.device("cpu"), 4, 4)
    assert good.status == "pass", good.message
    assert result.uninterrupted == result.resumed and len(result.resumed) == 4
    bad, result = check_resume(f"{FIX}:resume_forgets_scheduler", torch.device("cpu"), 4, 4)
    assert bad.status == "fail" and "after resume" in bad.message, bad.message
    # equal until the forgotten StepLR decays at a different step
    assert result.uninterrupted[:2] == result.resumed[:2]
    assert result.uninterrupted != result.resumed


def test_the_builtin_example_resumes_exactly(capsys):
    code = l0_runner.main(
        [
            "--format",
            "json",
            "--skip-l0",
            "--steps",
            "8",
            "--layer-steps",
            "0",
            "--resume-check",
            "3,3",
        ]
    )
    r = json.loads(capsys.readouterr().out)
    check = next(c for c in r["checks"] if c["name"] == "resume equivalence")
    assert check["status"] == "pass", check
    assert r["resume"]["checkpoint"] == "the spec's save_checkpoint/load_checkpoint"
    assert code == 0, r["checks"]
