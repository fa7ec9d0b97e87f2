"""End to end through the CLI: 5 rounds of a tiny real search (fitting a polynomial).

The "researcher" is a script that edits the Variable file (config.py) each round; train.py and
eval.py are Fixed; the fitted coefficients go to an ignored checkpoints/ folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git

TRAIN = """\
import json, os
import numpy as np
from config import DEGREE, RIDGE
x, y = np.loadtxt("data/train.txt", unpack=True)
X = np.vander(x, DEGREE + 1)
coef = np.linalg.solve(X.T @ X + RIDGE * np.eye(DEGREE + 1), X.T @ y)
os.makedirs("checkpoints", exist_ok=True)
json.dump(coef.tolist(), open("checkpoints/coef.json", "w"))
print("trained degree", DEGREE)
"""

EVAL = """\
import json
import numpy as np
coef = json.load(open("checkpoints/coef.json"))
x, y = np.loadtxt("data/val.txt", unpack=True)
print(json.dumps({"val_mse": float(np.mean((np.polyval(coef, x) - y) ** 2))}))
"""

RESEARCHER = """\
import sys
from pathlib import Path
root, rnd = Path(sys.argv[1]), int(sys.argv[2])
plan = {1: (1, 0.0), 2: (2, 0.0), 3: (0, 0.0), 4: (2, 0.0), 5: (2, 1e-3)}
degree, ridge = plan[rnd]
(root / "config.py").write_text(f"DEGREE = {degree}\\nRIDGE = {ridge}\\n")
if rnd == 4:  # breaks the rules: a file outside the Variable globs
    (root / "shortcut.py").write_text("HACK = True\\n")
"""


def make_project(root: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    (root / "data").mkdir(parents=True)
    for name, n in (("train", 40), ("val", 20)):
        x = rng.uniform(-2, 2, n)
        y = 1 + 2 * x - 0.5 * x**2 + 0.05 * rng.standard_normal(n)
        np.savetxt(root / "data" / f"{name}.txt", np.column_stack([x, y]))
    (root / "train.py").write_text(TRAIN)
    (root / "eval.py").write_text(EVAL)
    (root / "config.py").write_text("DEGREE = 0\nRIDGE = 0.0\n")
    (root / ".gitignore").write_text("checkpoints/\n__pycache__/\n")
    (root / "autoresearch-protocol.md").write_text(
        "---\n"
        "name: poly\n"
        "question: Which polynomial degree and ridge fit the validation data best?\n"
        "metric: {name: val_mse, direction: minimize, json_key: val_mse, target: 0.001}\n"
        "fixed_files: [train.py, eval.py, 'data/*.txt', autoresearch-protocol.md]\n"
        "variable_files: [config.py]\n"
        "allowed_range: DEGREE 0..6, RIDGE >= 0\n"
        f"train_command: {sys.executable} train.py\n"
        f"eval_command: {sys.executable} eval.py\n"
        "time_limit_s: 60\n"
        "max_rounds: 5\n"
        "plateau: {rounds: 3, min_delta: 0.0}\n"
        "---\n\n# Polynomial fit\n\nThe researcher may change config.py only.\n"
    )


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.loops", "autoresearch", *args, "--repo", str(root)],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_five_rounds_of_polynomial_search(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    make_project(root)
    repo = git.Repo.init(root)
    repo.git.add("-A")
    repo.git.commit("-qm", "baseline project")
    (tmp_path / "researcher.py").write_text(RESEARCHER)

    assert cli(root, "validate", "autoresearch-protocol.md").returncode == 0
    init = cli(root, "init", "autoresearch-protocol.md", "--format", "json")
    assert init.returncode == 0, init.stderr
    baseline = json.loads(init.stdout)["baseline"]

    codes = []
    for rnd in range(1, 6):
        brief = cli(root, "brief")
        assert brief.returncode == 0 and f"round {rnd} of 5" in brief.stdout
        subprocess.run(
            [sys.executable, str(tmp_path / "researcher.py"), str(root), str(rnd)], check=True
        )
        res = cli(
            root,
            "judge",
            "--strategy",
            f"plan step {rnd}",
            "--insight",
            f"lesson {rnd}",
            "--format",
            "json",
        )
        codes.append(res.returncode)
        assert res.returncode in (0, 3, 4), res.stderr
    # degree 1 and 2 improve; degree 0 regresses; the shortcut file fails; ridge is a coin toss
    assert codes[:4] == [0, 0, 3, 4]
    assert (root / "shortcut.py").exists()  # outside Variable: kept, never deleted

    st = json.loads(cli(root, "status", "--format", "json").stdout)
    rows = st["results"]
    assert [r["round"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    improved = [r for r in rows if r["status"] == "improved"]
    assert len(improved) == codes.count(0)
    best = min(float(r["metric"]) for r in improved)
    assert st["best"]["metric"] == best < baseline
    assert best < 0.01  # the quadratic is found
    assert st["rounds"] == 5 and st["stop"] and "max rounds" in st["stop"]
    commits = list(repo.iter_commits("autoresearch/poly"))
    assert len(commits) == 1 + len(improved)
    assert commits[0].hexsha == st["best"]["commit"]
    assert (root / "config.py").read_text() == repo.head.commit.tree[
        "config.py"
    ].data_stream.read().decode()
    exp = (root / ".labcoat/autoresearch/poly/experiences.md").read_text()
    assert all(f"## Round {i}" in exp for i in range(6)) and "lesson 5" in exp
    assert (root / "checkpoints" / "coef.json").exists()
    assert repo.git.status("--porcelain") == "?? shortcut.py"
    assert cli(root, "judge", "--strategy", "one more").returncode == 2  # max rounds reached
