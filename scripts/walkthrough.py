"""Regenerate docs/walkthrough.md from the installed plugin, in a user project, with real output.

    python scripts/walkthrough.py            # writes docs/walkthrough.md (a few minutes on CPU)

What it does, all under a temporary folder: clones this repository's HEAD, installs it with the
pinned Claude Code CLI into a throwaway HOME (`claude plugin marketplace add` + `plugin install`),
makes a user project with its own venv (torch linked from this interpreter's environment, tqdm
installed by pip) and the user's files shown in the document, then runs each step through the
installed `bin/labcoat` exactly as an agent's Bash tool would, and records every command with its
output and exit code. Paths under the temporary folder are shown as `~` (the HOME) and `proj/`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.328"
sys.path.insert(0, str(ROOT))

from tests.plugin.test_user_project import make_user_venv  # noqa: E402 - one recipe

TRAIN = '''\
"""A small character-level language model: the user's training script."""
import argparse, glob, json, os, signal, torch
from tqdm import tqdm

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--resume", default=None)
p.add_argument("--die-at", type=int, default=-1, help="SIGKILL itself once at this step")
args = p.parse_args()

text = open("data/input.txt").read()
vocab = sorted(set(text))
data = torch.tensor([vocab.index(c) for c in text])
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Embedding(len(vocab), 64), torch.nn.Flatten(), torch.nn.Linear(64 * 8, 128),
    torch.nn.GELU(), torch.nn.Linear(128, len(vocab)),
)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
start = 0
if args.resume:
    ckpt = torch.load(args.resume)
    model.load_state_dict(ckpt["model"]), opt.load_state_dict(ckpt["opt"])
    start = ckpt["step"] + 1
os.makedirs("ckpt", exist_ok=True)
log = open("train_log.jsonl", "a")
for step in tqdm(range(start, args.steps)):
    ix = torch.randint(len(data) - 9, (32,))
    x = torch.stack([data[i : i + 8] for i in ix])
    y = data[ix + 8]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    log.write(json.dumps({"step": step, "loss": loss.item(), "grad_norm": norm.item(),
                          "lr": args.lr}) + "\\n")
    log.flush()
    if step % 50 == 49:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step},
                   f"ckpt/step-{step:05d}.pt")
    if step == args.die_at and not os.path.exists("ckpt/.died"):
        open("ckpt/.died", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
'''

TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. "
) * 40

STEPS = [
    (
        "1. Is the launcher ready, and which Python will it use?",
        "labcoat:using-labcoat",
        ["labcoat", "doctor"],
    ),
    (
        "2. Where will this run, will it fit, how long?",
        "labcoat:experiment-planning",
        ["labcoat", "hardware", "detect"],
    ),
    (
        None,
        None,
        [
            "labcoat",
            "compute",
            "memory",
            "--preset",
            "gpt2",
            "--micro-batch",
            "16",
            "--seq-len",
            "1024",
            "--precision",
            "bf16-mixed",
            "--gpu",
            "a10g",
        ],
    ),
    (
        None,
        None,
        [
            "labcoat",
            "compute",
            "time",
            "--preset",
            "gpt2",
            "--tokens",
            "10e9",
            "--gpu",
            "a10g",
            "--mfu",
            "0.4",
        ],
    ),
    (
        "3. L0: static checks of the user's script",
        "labcoat:validation-pyramid",
        ["labcoat", "static.check", "train.py"],
    ),
    (
        "4. L1: runtime validation of the unmodified script, in the user's venv",
        "labcoat:validation-pyramid",
        [
            "labcoat",
            "profiling.l0_runner",
            "--script",
            "train.py",
            "--steps",
            "60",
            "--",
            "--steps",
            "60",
        ],
    ),
    (
        "5. Hand-off: the launch command for this machine",
        "labcoat:training-handoff",
        [
            "labcoat",
            "hardware",
            "launch",
            "--env",
            "cpu",
            "--script",
            "train.py",
            "--",
            "--steps",
            "300",
        ],
    ),
    (
        "6. Watchdog: the run is killed at step 120 and resumed from its checkpoint",
        "labcoat:watchdog",
        [
            "labcoat",
            "watchdog",
            "run",
            "--run-dir",
            "run1",
            "--checkpoints",
            "ckpt/step-*.pt",
            "--resume",
            "--resume {checkpoint}",
            "--",
            "python",
            "train.py",
            "--steps",
            "300",
            "--die-at",
            "120",
        ],
    ),
    (None, None, ["labcoat", "watchdog", "status", "run1"]),
    (
        "7. Read the log",
        "labcoat:train-debug",
        ["labcoat", "logs", "analyze", "train_log.jsonl", "--plot", "curves.png"],
    ),
]


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="labcoat-walkthrough-"))
    home, src, proj = tmp / "home", tmp / "labcoat", tmp / "proj"
    home.mkdir()
    sh(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    install = []
    for args in (
        ("plugin", "marketplace", "add", str(src)),
        ("plugin", "install", "labcoat@labcoat"),
    ):
        out = sh(["npx", "-y", CLAUDE_CODE, *args], env=dict(os.environ, HOME=str(home)), cwd=tmp)
        lines = [line for line in (out.stdout + out.stderr).splitlines()
                 if line.strip() and not line.startswith("npm ")]  # fmt: skip
        install.append(("claude " + " ".join(args), lines[-1:], out.returncode))
        if out.returncode:
            print("\n".join(lines), file=sys.stderr)
            return 1
    plugin = Path(json.loads((home / ".claude/plugins/installed_plugins.json").read_text())
                  ["plugins"]["labcoat@labcoat"][0]["installPath"])  # fmt: skip

    proj.mkdir()
    (proj / "data").mkdir()
    (proj / "data" / "input.txt").write_text(TEXT)
    (proj / "train.py").write_text(TRAIN)
    venv = proj / ".venv"
    pip = make_user_venv(venv)
    if pip.returncode != 0:
        print(pip.stderr, file=sys.stderr)
        return 1

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABCOAT_", "CLAUDE_"))}
    env.pop("PYTHONPATH", None)
    env.update(HOME=str(home), VIRTUAL_ENV=str(venv),
               PATH=os.pathsep.join([str(plugin / "bin"), str(venv / "bin"), env["PATH"]]))  # fmt: skip

    def clean(text: str) -> str:
        text = "\n".join(
            line
            for line in text.replace("\r", "\n").splitlines()
            if not re.search(r"\d+/\d+ \[[^\]]*(it/s|s/it|\?)", line)
        )  # tqdm bars
        return (text.replace(str(plugin), "~/.claude/plugins/cache/labcoat/labcoat/0.1.0")
                .replace(str(home), "~").replace(str(proj), "proj").replace(str(tmp), "/tmp/…"))  # fmt: skip

    doc = [
        "# Walk-through: the installed plugin in a user's project, real output",
        "",
        "Generated by `python scripts/walkthrough.py` on "
        f"{time.strftime('%Y-%m-%d')} (CPU only, no GPU). It installs a clone of this repository "
        f"with the real Claude Code CLI ({CLAUDE_CODE}) into a throwaway HOME, then runs every "
        "step through the installed `bin/labcoat`, as the agent's Bash tool does, in a user project "
        "with its own venv (torch, tqdm). `~` is that HOME; `proj/` the project.",
        "",
        "## 0. Install",
        "",
        "```text",
    ]
    for cmd, lines, _code in install:
        doc += [f"$ {clean(cmd)}", *map(clean, lines)]
    doc += [
        "```",
        "",
        "The user's project holds these files (nothing else; labcoat adds none of its own there "
        "besides what the commands below say they write):",
        "",
        "- `proj/.venv/` — the user's venv: torch 2.13.0 (CPU), tqdm. No numpy, pyyaml or "
        "matplotlib: labcoat brings those in its own environment.",
        f"- `proj/data/input.txt` — {len(TEXT):,} characters of text.",
        "- `proj/train.py` — the user's training script:",
        "",
        "```python",
        TRAIN.rstrip(),
        "```",
        "",
    ]
    for title, skill, argv in STEPS:
        if title:
            doc += [f"## {title} [{skill}]", ""]
        start = time.perf_counter()
        out = sh(argv, env=env, cwd=proj, timeout=900)
        took = time.perf_counter() - start
        text = clean(out.stdout + out.stderr).rstrip()
        shown = " ".join(shlex.quote(a) for a in argv)
        doc += ["```text", f"$ {shown}", text, f"# exit {out.returncode}, {took:.1f} s", "```", ""]
        print(f"{out.returncode} {took:6.1f}s {shown}", file=sys.stderr)
    made = sorted(str(p.relative_to(proj)) for p in proj.rglob("*")
                  if p.is_file() and ".venv" not in p.parts)  # fmt: skip
    data = home / ".claude/plugins/data/labcoat-labcoat"
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file() and not f.is_symlink())
    doc += [
        "## Files at the end",
        "",
        "In `proj/` (besides `.venv/`): " + ", ".join(f"`{m}`" for m in made) + ".",
        "",
        f"labcoat's environment: `~/.claude/plugins/data/labcoat-labcoat/` ({size / 2**20:.0f} MB, "
        "no torch), kept when the plugin is updated.",
        "",
    ]
    (ROOT / "docs" / "walkthrough.md").write_text("\n".join(doc))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
