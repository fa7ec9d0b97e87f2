"""The installed plugin works where users work (issue 15).

A clean clone is installed with the real, pinned Claude Code CLI into a throwaway HOME (and, the
documented way, for Codex); then, in a user project that has its own venv (torch plus tqdm, which
labcoat does not depend on) and a `toolkit/` folder of its own, the installed `bin/labcoat` runs
L0 on the user's script, L1 `--script` (PASS, importing tqdm), `logs analyze --plot` and
`compute memory`.

The user's venv gets torch by linking the test interpreter's torch and the packages torch requires
into its site-packages (saving a 900 MB copy per run); tqdm is installed into it by pip. It holds
no numpy, pyyaml or matplotlib: those must come from labcoat's own environment.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit import launcher

from .conftest import CLAUDE_CODE, CODEX, ROOT, npx

TRAIN = """\
import torch
from tqdm import tqdm

torch.manual_seed(0)
x = torch.randn(256, 8)
y = x @ torch.randn(8, 1) + 0.1 * torch.randn(256, 1)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in tqdm(range(200)):
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""

MB = 1024 * 1024


def _torch_closure() -> list[str]:
    """Top-level names (packages, modules, dist-info) of torch and everything it requires."""
    names, todo, seen = [], ["torch"], set()
    while todo:
        dist_name = todo.pop()
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            continue
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        names += sorted(t for t in tops if not t.endswith((".pth", "__pycache__")) and t != "..")
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
    return sorted(set(names))


def make_user_venv(venv: Path) -> subprocess.CompletedProcess:
    """A user's venv: torch linked from this interpreter's environment, tqdm installed by pip.
    Returns pip's result (the caller decides whether a failed install skips or fails)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    source = Path(md.distribution("torch").locate_file(""))
    for name in _torch_closure():
        if (source / name).exists() and not (site / name).exists():
            (site / name).symlink_to(source / name)
    return subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "tqdm"],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    proj = tmp_path_factory.mktemp("user-project")
    pip = make_user_venv(proj / ".venv")
    if pip.returncode != 0:
        pytest.skip(f"pip could not install tqdm into the user venv: {pip.stderr[-500:]}")
    (proj / "train.py").write_text(TRAIN)
    # the user's own toolkit package, with a logs/ subpackage like labcoat's
    (proj / "toolkit" / "logs").mkdir(parents=True)
    (proj / "toolkit" / "__init__.py").write_text("USER_TOOLKIT = True\n")
    (proj / "toolkit" / "logs" / "__init__.py").write_text("raise ImportError('user logs')\n")
    with open(proj / "log.jsonl", "w") as f:
        for step in range(300):
            f.write(json.dumps({"step": step, "loss": 3.0 * 0.99**step + 0.01 * (step % 7)}) + "\n")
    return proj


def user_env(home: Path, proj: Path, extra_path: str = "") -> dict[str, str]:
    """The shell of a user who activated their project's venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABCOAT_", "CLAUDE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        # the throwaway HOME shares the real pip cache: wheels are downloaded once per machine
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip"),
        HOME=str(home),
        VIRTUAL_ENV=str(proj / ".venv"),
        PATH=os.pathsep.join(p for p in (extra_path, str(proj / ".venv/bin"), env["PATH"]) if p),
    )
    env.pop("XDG_DATA_HOME", None)
    return env


def labcoat(cmd: str, *args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [cmd, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900
    )


def run_user_flow(cmd: str, env: dict, proj: Path) -> dict[str, float]:
    """The flow a new user's agent runs; returns timings (s)."""
    out = labcoat(cmd, "static.check", "train.py", env=env, cwd=proj)  # creates the env
    assert out.returncode == 0, out.stdout + out.stderr

    l1 = labcoat(
        cmd, "profiling.l0_runner", "--script", "train.py", "--steps", "60", env=env, cwd=proj
    )
    assert l1.returncode == 0, l1.stdout[-3000:] + l1.stderr[-3000:]
    assert "PASS" in l1.stdout, l1.stdout[-3000:]
    assert f"running under {proj / '.venv/bin/python'} (VIRTUAL_ENV)" in l1.stderr, l1.stderr

    png = proj / "curves.png"
    png.unlink(missing_ok=True)
    plot = labcoat(cmd, "logs", "analyze", "log.jsonl", "--plot", str(png), env=env, cwd=proj)
    assert plot.returncode in (0, 1), plot.stdout + plot.stderr  # 1 = findings
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot.stderr

    mem = labcoat(
        cmd, "compute", "memory", "--preset", "gpt2", "--format", "json", env=env, cwd=proj
    )
    assert mem.returncode == 0, mem.stderr
    assert json.loads(mem.stdout)

    # a second call reuses the environment: the launcher's own overhead, against running the
    # same module directly in labcoat's environment
    t0 = time.perf_counter()
    via = labcoat(cmd, "hardware", "specs", "--format", "json", env=env, cwd=proj)
    t_launcher = time.perf_counter() - t0
    assert via.returncode == 0 and "labcoat: creating" not in via.stderr, via.stderr
    data = launcher.data_dir(env, Path(os.path.realpath(cmd)).parents[1])
    env_python = next(data.glob("envs/*/bin/python"))
    direct_env = dict(env, PYTHONPATH=str(next(data.glob("pypath/*"))))
    t0 = time.perf_counter()
    direct = subprocess.run(
        [str(env_python), "-m", "toolkit.hardware", "specs", "--format", "json"],
        capture_output=True,
        text=True,
        env=direct_env,
        cwd=ROOT,
    )
    t_direct = time.perf_counter() - t0
    assert direct.returncode == 0, direct.stderr
    assert via.stdout == direct.stdout
    return {"launcher_s": t_launcher, "direct_s": t_direct, "overhead_s": t_launcher - t_direct}


def disk_mb(*paths: Path) -> float:
    total = 0
    for p in paths:
        for f in p.rglob("*"):
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
    return total / MB


def assert_no_torch(data: Path) -> None:
    torches = [p for p in data.rglob("site-packages/torch") if p.is_dir()]
    assert not torches, f"torch installed plugin-side: {torches}"


def test_claude_code_install_in_a_user_project(tmp_path, user_project):
    src = tmp_path / "labcoat"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    for args in (
        ("plugin", "marketplace", "add", str(src)),
        ("plugin", "install", "labcoat@labcoat"),
    ):
        proc = npx(CLAUDE_CODE, *args, cwd=tmp_path, env={"HOME": str(home)})
        assert proc.returncode == 0, (
            f"claude {' '.join(args)}:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    installed = json.loads((home / ".claude/plugins/installed_plugins.json").read_text())
    entry = installed["plugins"]["labcoat@labcoat"][0]
    plugin = Path(entry["installPath"])
    cmd = plugin / "bin" / "labcoat"
    assert os.access(cmd, os.X_OK), f"{cmd} is not executable after install"

    env = user_env(home, user_project)
    timings = run_user_flow(str(cmd), env, user_project)
    print("claude code install:", timings)
    assert timings["overhead_s"] < 1.0, timings

    data = home / ".claude/plugins/data/labcoat-labcoat"
    assert (data / "envs").is_dir(), f"labcoat's environment is not in {data}"
    assert not (plugin / ".venv").exists()  # nothing in the versioned cache folder
    assert_no_torch(data)
    size = disk_mb(plugin, data)
    print(f"plugin-side disk: {size:.0f} MB")
    assert size < 400, f"plugin-side disk {size:.0f} MB"

    # the SessionStart hook the plugin declares: router text + one status line
    hook = subprocess.run(
        [str(plugin / "hooks/session-start")],
        capture_output=True,
        text=True,
        env=dict(env, CLAUDE_PLUGIN_ROOT=str(plugin), CLAUDE_PLUGIN_DATA=str(data)),
        cwd=user_project,
    )
    assert hook.returncode == 0, hook.stderr
    assert "Hard gates" in hook.stdout
    assert hook.stdout.rstrip().splitlines()[-1].startswith("labcoat launcher ready"), hook.stdout


def test_codex_install_in_a_user_project(tmp_path, user_project):
    """docs/codex.md: clone into ~/.agents/skills/labcoat, link bin/labcoat onto PATH."""
    home = tmp_path / "home"
    skills_root = home / ".agents" / "skills"
    skills_root.mkdir(parents=True)
    (home / ".codex").mkdir()
    checkout = skills_root / "labcoat"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    bin_dir = home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "labcoat").symlink_to(checkout / "bin" / "labcoat")

    proc = npx(
        CODEX,
        "debug",
        "prompt-input",
        cwd=user_project,
        env={"HOME": str(home), "CODEX_HOME": str(home / ".codex")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md"))
    missing = [n for n in names if f"labcoat:{n}:" not in proc.stdout]
    assert not missing, f"skills not in Codex's prompt: {missing}"
    listed = re.findall(r"file: r\d+/labcoat/([^)]*)\)", proc.stdout)
    assert sorted(listed) == sorted(f"skills/{n}/SKILL.md" for n in names), listed

    env = user_env(home, user_project, extra_path=str(bin_dir))
    cmd = shutil.which("labcoat", path=env["PATH"])
    assert cmd == str(bin_dir / "labcoat")
    timings = run_user_flow(cmd, env, user_project)
    print("codex install:", timings)
    assert timings["overhead_s"] < 1.0, timings
    data = home / ".local/share/labcoat"
    assert (data / "envs").is_dir()
    assert_no_torch(data)
