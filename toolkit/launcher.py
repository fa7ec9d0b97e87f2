"""The ``labcoat`` launcher: run a toolkit command from an installed plugin, in the right Python.

``bin/labcoat AREA[.MODULE] [VERB] ARGS...`` runs exactly ``python -m toolkit.AREA[.MODULE] [VERB]
ARGS...``; this module decides *which* Python runs it and how ``toolkit`` is found there.

- Commands that import the user's code (:data:`USER_CODE`: runtime validation, layer and memory
  profiling) run under the interpreter the user trains with: ``--python`` / ``LABCOAT_PYTHON``,
  else the active ``VIRTUAL_ENV``, else ``CONDA_PREFIX``, else a ``.venv`` in the working directory
  or its git root, else ``python3`` on PATH. Numbers measured with another torch are not the user's.
  labcoat's light dependencies (numpy, pyyaml, ...) come from a labcoat environment built with the
  same Python version and are appended *after* the user's site-packages, so the user's own
  packages win and nothing is installed into the user's environment; torch is never installed.
- Every other command runs in that labcoat environment (``python -I``: no user site, no
  PYTHONPATH), kept in the plugin's data folder (``CLAUDE_PLUGIN_DATA``), which survives plugin
  updates, created on first use with a progress line on stderr and reused after.
- ``toolkit`` is imported from the plugin through a folder that holds nothing else, put first on
  ``sys.path``: a user's own ``toolkit/`` folder or a ``toolkit`` distribution cannot shadow it.

This file uses only the standard library: it runs before any environment exists.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the plugin (or checkout) root
TOOLKIT = ROOT / "toolkit"
PROG = "labcoat"
MIN_PYTHON = (3, 10)

# Commands that import the user's training code (and torch): run in the user's interpreter.
USER_CODE = ("profiling.l0_runner", "profiling.layer_profiler", "profiling.memory_profiler")

EXIT_USAGE = 2
NAME_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")

# Run in the chosen interpreter: put the isolated toolkit folder first, append labcoat's
# site-packages after the user's, check torch where the command needs it, then run the module
# as ``python -m`` would.
BOOT = """\
import os, runpy, site, sys
sys.path.insert(0, os.environ.pop("LABCOAT_PYPATH"))
_site = os.environ.pop("LABCOAT_SITE", "")
if _site:
    site.addsitedir(_site)
_need = os.environ.pop("LABCOAT_NEEDS", "")
if _need:
    import importlib.util
    if importlib.util.find_spec(_need) is None:
        sys.stderr.write(os.environ.pop("LABCOAT_NEEDS_MSG", _need + " is missing") + "\\n")
        sys.exit(2)
_mod = sys.argv[1]
sys.argv = [_mod] + sys.argv[2:]
runpy.run_module(_mod, run_name="__main__", alter_sys=True)
"""


class LaunchError(Exception):
    """A problem the user can fix; printed as one line, exit 2."""


@dataclass
class Interpreter:
    path: str
    why: str  # where it came from: "--python", "LABCOAT_PYTHON", "VIRTUAL_ENV", ...


# ----------------------------------------------------------------------------- locations


def data_dir(environ: dict[str, str] | None = None, root: Path = ROOT) -> Path:
    """Where labcoat keeps its environment: survives plugin updates.

    ``LABCOAT_HOME`` > ``CLAUDE_PLUGIN_DATA`` (set by Claude Code for hooks and MCP servers) > the
    data folder Claude Code gives this plugin when installed from a marketplace
    (``~/.claude/plugins/data/<plugin>-<marketplace>``, derived from the install path
    ``.../plugins/cache/<marketplace>/<plugin>/<version>``) > ``$XDG_DATA_HOME/labcoat``.
    """
    env = os.environ if environ is None else environ
    for name in ("LABCOAT_HOME", "CLAUDE_PLUGIN_DATA"):
        if env.get(name):
            return Path(env[name]).expanduser()
    parts = root.parts
    if len(parts) >= 5 and parts[-5] == "plugins" and parts[-4] == "cache":
        plugin_id = f"{parts[-2]}@{parts[-3]}"
        return Path(*parts[:-4], "data", re.sub(r"[^a-zA-Z0-9\-_]", "-", plugin_id))
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/share")
    return Path(xdg) / "labcoat"


def pypath_dir(data: Path, root: Path = ROOT) -> Path:
    """A folder holding only ``toolkit`` (a link to this plugin's package), made on first use."""
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    folder = data / "pypath" / tag
    link = folder / "toolkit"
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".toolkit.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(root / "toolkit", target_is_directory=True)
        os.replace(tmp, link)
    return folder


# ----------------------------------------------------------------------------- targets


def runnable_modules(root: Path = ROOT) -> dict[str, str]:
    """Every ``AREA[.MODULE]`` the launcher can run, with the first line of its docstring."""
    found: dict[str, str] = {}
    toolkit = root / "toolkit"
    for path in sorted(toolkit.rglob("*.py")):
        rel = path.relative_to(toolkit).with_suffix("")
        if any(p.startswith("_") and p != "__main__" for p in rel.parts) or "tests" in rel.parts:
            continue
        if rel.name == "__main__":
            name = ".".join(rel.parts[:-1])
            doc_of = path.parent / "__init__.py"
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            if '__name__ == "__main__"' not in text and "__name__ == '__main__'" not in text:
                continue
            name, doc_of = ".".join(rel.parts), path
        if not name or name == "launcher":
            continue
        found[name] = _first_doc_line(doc_of) or _first_doc_line(path)
    return found


def _first_doc_line(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        return ""
    return (doc or "").strip().splitlines()[0] if doc else ""


def resolve_target(name: str, root: Path = ROOT) -> str:
    """``static.check`` -> ``toolkit.static.check``; an unknown name is a LaunchError."""
    name = name.removeprefix("toolkit.")
    if not NAME_RE.match(name):
        raise LaunchError(f"'{name}' is not a toolkit command name (expected AREA[.MODULE])")
    rel = Path(*name.split("."))
    base = root / "toolkit" / rel
    if base.with_suffix(".py").is_file() or (base / "__main__.py").is_file():
        return f"toolkit.{name}"
    areas = ", ".join(sorted({n.split(".")[0] for n in runnable_modules(root)}))
    raise LaunchError(f"unknown command '{name}': areas are {areas} (run '{PROG} --help')")


def needs_user_python(name: str) -> bool:
    name = name.removeprefix("toolkit.")
    return any(name == m or name.startswith(m + ".") for m in USER_CODE)


# ----------------------------------------------------------------------------- interpreters


def _venv_python(prefix: str | Path) -> Path:
    prefix = Path(prefix)
    return prefix / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _git_root(cwd: Path) -> Path | None:
    for d in (cwd, *cwd.parents):
        if (d / ".git").exists():
            return d
    return None


def user_interpreter(
    override: str | None, environ: dict[str, str] | None = None, cwd: Path | None = None
) -> Interpreter:
    """The interpreter the user trains with, and why it was chosen."""
    env = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    if override:
        return Interpreter(_existing(override, "--python"), "--python")
    if env.get("LABCOAT_PYTHON"):
        return Interpreter(_existing(env["LABCOAT_PYTHON"], "LABCOAT_PYTHON"), "LABCOAT_PYTHON")
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if env.get(var) and _venv_python(env[var]).exists():
            return Interpreter(str(_venv_python(env[var])), var)
    for folder in dict.fromkeys(d for d in (cwd, _git_root(cwd)) if d is not None):
        for name in (".venv", "venv"):
            py = _venv_python(folder / name)
            if py.exists() and (folder / name / "pyvenv.cfg").exists():
                return Interpreter(str(py), f"{folder / name} (project venv)")
    found = shutil.which("python3", path=env.get("PATH")) or shutil.which(
        "python", path=env.get("PATH")
    )
    if not found:
        raise LaunchError("no python3 on PATH: pass --python PATH or set LABCOAT_PYTHON")
    return Interpreter(found, "python3 on PATH")


def _existing(path: str, source: str) -> str:
    found = shutil.which(path) if os.sep not in path else path
    if not found or not Path(found).exists():
        raise LaunchError(f"{source}: interpreter '{path}' does not exist")
    return found


def python_tag(python: str) -> tuple[str, str]:
    """(``cpython-3.11``, site-packages relative path) of an interpreter, asked in one call."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        info = [sys.implementation.name, sys.version_info[0], sys.version_info[1]]
    else:
        code = "import sys,json;print(json.dumps([sys.implementation.name,*sys.version_info[:2]]))"
        try:
            out = subprocess.run(
                [python, "-I", "-c", code], capture_output=True, text=True, timeout=60
            )
        except OSError as exc:
            raise LaunchError(f"cannot run interpreter {python}: {exc}") from None
        if out.returncode != 0:
            raise LaunchError(f"interpreter {python} failed: {out.stderr.strip()[-300:]}")
        info = json.loads(out.stdout)
    impl, major, minor = info
    if (major, minor) < MIN_PYTHON:
        raise LaunchError(
            f"{python} is Python {major}.{minor}; labcoat needs Python "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer (pass --python PATH or set LABCOAT_PYTHON)"
        )
    site_rel = (
        "Lib/site-packages" if os.name == "nt" else f"lib/python{major}.{minor}/site-packages"
    )
    return f"{impl}-{major}.{minor}", site_rel


# ----------------------------------------------------------------------------- labcoat env


def requirements(root: Path = ROOT) -> list[str]:
    """What labcoat's own environment holds: pyproject's dependencies without torch, plus the
    extras named in ``[tool.labcoat] launcher-extras`` (one source: pyproject.toml)."""
    data = _read_pyproject(root / "pyproject.toml")
    project = data.get("project", {})
    reqs = [r for r in project.get("dependencies", []) if _req_name(r) != "torch"]
    extras = data.get("tool", {}).get("labcoat", {}).get("launcher-extras", [])
    for extra in extras:
        reqs += [
            r
            for r in project.get("optional-dependencies", {}).get(extra, [])
            if _req_name(r) != "torch"
        ]
    return list(dict.fromkeys(reqs))


def _req_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _read_pyproject(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: the few arrays the launcher reads
        return _mini_toml(text)
    return tomllib.loads(text)


def _mini_toml(text: str) -> dict:
    """Tables and string arrays only: enough for [project] and [tool.labcoat] on Python 3.10."""
    data: dict = {}
    table = data
    body = "\n".join(_strip_comment(line) for line in text.splitlines())
    for m in re.finditer(r"^\[([^\]]+)\]\s*$|^([\w-]+)\s*=\s*(\[[^\]]*\]|\"[^\"]*\")", body, re.M):
        if m.group(1):
            table = data
            for key in m.group(1).strip().split("."):
                table = table.setdefault(key.strip('"'), {})
        else:
            table[m.group(2)] = ast.literal_eval(m.group(3).replace("\n", " "))
    return data


def _strip_comment(line: str) -> str:
    """The line without a ``#`` comment that starts outside a quoted string."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def env_key(tag: str, reqs: list[str]) -> str:
    return f"{tag}-{hashlib.sha256(json.dumps(sorted(reqs)).encode()).hexdigest()[:10]}"


def ensure_env(python: str, data: Path, root: Path = ROOT, quiet: bool = False) -> tuple[Path, str]:
    """labcoat's environment for ``python``'s version (created on first use, reused after), and
    its site-packages path relative to the environment."""
    tag, site_rel = python_tag(python)
    reqs = requirements(root)
    env = data / "envs" / env_key(tag, reqs)
    ready = env / ".labcoat-ready"
    if ready.exists():
        return env, site_rel
    env.parent.mkdir(parents=True, exist_ok=True)
    with _locked(env.parent / f"{env.name}.lock"):
        if ready.exists():  # another launcher built it while we waited
            return env, site_rel
        if env.exists():
            shutil.rmtree(env)  # a half-built environment of ours (a killed install)
        log = env.parent / f"{env.name}.log"
        if not quiet:
            sys.stderr.write(
                f"labcoat: creating its environment (first use; {tag}; "
                f"{', '.join(_req_name(r) for r in reqs)}; no torch) in {env} ...\n"
            )
            sys.stderr.flush()
        start = time.monotonic()
        steps = [
            [python, "-m", "venv", str(env)],
            [
                str(_venv_python(env)),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                *reqs,
            ],
        ]
        with open(log, "w", encoding="utf-8") as out:
            for argv in steps:
                out.write("$ " + " ".join(argv) + "\n")
                out.flush()
                proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
                if proc.returncode != 0:
                    shutil.rmtree(env, ignore_errors=True)
                    raise LaunchError(
                        f"could not create labcoat's environment: `{' '.join(argv[:4])} ...` "
                        f"exited {proc.returncode}; see {log}"
                        + (
                            " (Debian/Ubuntu: apt-get install python3-venv)"
                            if argv[1:3] == ["-m", "venv"]
                            else ""
                        )
                    )
        ready.write_text(json.dumps({"requirements": reqs, "python": python}) + "\n")
        if not quiet:
            sys.stderr.write(f"labcoat: environment ready in {time.monotonic() - start:.0f} s\n")
    return env, site_rel


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as handle:
        try:
            import fcntl
        except ModuleNotFoundError:  # Windows: no advisory lock; a race only rebuilds
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- plan + run


@dataclass
class Plan:
    """What the launcher will run: argv and the environment variables it sets."""

    module: str
    python: str
    why: str
    argv: list[str]
    env: dict[str, str]


def plan(
    name: str,
    args: list[str],
    python_override: str | None = None,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    root: Path = ROOT,
    quiet: bool = False,
) -> Plan:
    env = dict(os.environ if environ is None else environ)
    module = resolve_target(name, root)
    data = data_dir(env, root)
    pypath = pypath_dir(data, root)
    child = dict(env)
    child["LABCOAT_PYPATH"] = str(pypath)
    if needs_user_python(name) or python_override:
        interp = user_interpreter(python_override, env, cwd)
        labcoat_env, site_rel = ensure_env(interp.path, data, root, quiet)
        child["LABCOAT_SITE"] = str(labcoat_env / site_rel)
        # Child processes the command starts (e.g. torchrun workers) import toolkit too.
        child["PYTHONPATH"] = os.pathsep.join(p for p in (str(pypath), env.get("PYTHONPATH")) if p)
        if needs_user_python(name):
            child["LABCOAT_NEEDS"] = "torch"
            child["LABCOAT_NEEDS_MSG"] = (
                f"labcoat: {name} runs your training code and needs torch, but {interp.path} "
                f"({interp.why}) cannot import torch. Activate the environment you train with, "
                f"or pass --python PATH (labcoat --python PATH {name} ...) or set LABCOAT_PYTHON."
            )
        argv = [interp.path, "-c", BOOT, module, *args]
        return Plan(module, interp.path, interp.why, argv, child)
    bootstrap = sys.executable
    labcoat_env, _ = ensure_env(bootstrap, data, root, quiet)
    python = str(_venv_python(labcoat_env))
    argv = [python, "-I", "-c", BOOT, module, *args]
    return Plan(module, python, "labcoat environment", argv, child)


def execute(p: Plan) -> int:
    if os.name == "nt":  # no exec on Windows: wait and pass the exit code on
        return subprocess.run(p.argv, env=p.env).returncode
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(p.argv[0], p.argv, p.env)
    return 0  # not reached


# ----------------------------------------------------------------------------- CLI

USAGE = f"""usage: {PROG} [--python PATH] AREA[.MODULE] [VERB] [ARGS...]
       {PROG} doctor [--format json]
       {PROG} --help | --version

Runs `python -m toolkit.AREA[.MODULE] [VERB] ARGS...` from the labcoat plugin, e.g.
  {PROG} static.check train.py
  {PROG} profiling.l0_runner --script train.py -- --lr 3e-4
  {PROG} logs analyze runs/log.jsonl --plot curves.png

Runtime validation and profiling ({", ".join(USER_CODE)}) run under the Python you train with:
--python PATH, else $LABCOAT_PYTHON, else $VIRTUAL_ENV, else $CONDA_PREFIX, else ./.venv (or the
git root's), else python3 on PATH. Other commands run in labcoat's own small environment (no
torch), created on first use in the plugin's data folder ($LABCOAT_HOME overrides it).
Nothing is installed into your environment. Each command explains its flags in --help.
"""


def _help_text(root: Path = ROOT) -> str:
    rows = runnable_modules(root)
    width = max(len(n) for n in rows)
    listing = "\n".join(f"  {n.ljust(width)}  {doc}" for n, doc in rows.items())
    return f"{USAGE}\ncommands:\n{listing}\n"


@dataclass
class Doctor:
    ok: bool
    root: str
    data_dir: str
    bootstrap_python: str
    labcoat_env: str
    user_python: str
    user_python_why: str
    user_torch: str
    problems: list[str]

    def line(self) -> str:
        if not self.ok:
            return "labcoat launcher NOT ready: " + "; ".join(self.problems)
        return (
            f"labcoat launcher ready (`labcoat --help`); environment: {self.labcoat_env}; "
            f"training Python: {self.user_python} ({self.user_python_why}), torch {self.user_torch}"
        )


def doctor(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Doctor:
    """Fast checks (no install): can the launcher run here, and what would it use."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    data = data_dir(env)
    state = "not created yet (the first command creates it, about a minute)"
    try:
        tag, _ = python_tag(sys.executable)
        key = env_key(tag, requirements())
        if (data / "envs" / key / ".labcoat-ready").exists():
            state = str(data / "envs" / key)
    except LaunchError as exc:
        problems.append(str(exc))
    try:
        data.mkdir(parents=True, exist_ok=True)
        if not os.access(data, os.W_OK):
            problems.append(f"data folder {data} is not writable (set LABCOAT_HOME)")
    except OSError as exc:
        problems.append(f"cannot create data folder {data}: {exc} (set LABCOAT_HOME)")
    user, why, torch = "none", "", "unknown"
    try:
        interp = user_interpreter(None, env, cwd)
        user, why = interp.path, interp.why
        code = "import importlib.util as u,sys;s=u.find_spec('torch');print('found' if s else 'missing')"
        out = subprocess.run([user, "-c", code], capture_output=True, text=True, timeout=30)
        torch = out.stdout.strip() or "unknown"
    except (LaunchError, OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    return Doctor(
        not problems, str(ROOT), str(data), sys.executable, state, user, why, torch, problems
    )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    python_override = None
    try:
        if sys.version_info < MIN_PYTHON:
            raise LaunchError(
                f"{sys.executable} is Python {sys.version_info[0]}.{sys.version_info[1]}; "
                f"labcoat needs {'.'.join(map(str, MIN_PYTHON))}+ (set LABCOAT_BOOTSTRAP_PYTHON)"
            )
        while args and args[0].startswith("--python"):
            if "=" in args[0]:
                python_override = args.pop(0).split("=", 1)[1]
            elif len(args) < 2:
                raise LaunchError("--python expects a path to a Python interpreter")
            else:
                args.pop(0)
                python_override = args.pop(0)
        if not args or args[0] in ("-h", "--help", "help"):
            sys.stdout.write(_help_text())
            return 0 if args else EXIT_USAGE
        if args[0] == "--version":
            text = (TOOLKIT / "__init__.py").read_text(encoding="utf-8")
            version = re.search(r'__version__ = "([^"]+)"', text)
            print(f"labcoat {version.group(1) if version else 'unknown'} ({ROOT})")
            return 0
        if args[0] == "doctor":
            report = doctor()
            if "--format" in args and "json" in args:
                print(json.dumps(asdict(report), indent=2))
            else:
                print(report.line())
            return 0 if report.ok else 1
        p = plan(args[0], args[1:], python_override)
    except LaunchError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    if needs_user_python(args[0]) or python_override:
        sys.stderr.write(f"labcoat: running under {p.python} ({p.why})\n")
    return execute(p)


if __name__ == "__main__":
    sys.exit(main())
