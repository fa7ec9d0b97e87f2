"""(f) Codex discovers every skill when ~/.agents/skills/labcoat links to skills/."""

import re

from .conftest import CODEX, ROOT, npx, skill_files


def test_codex_prompt_lists_every_skill(tmp_path):
    home = tmp_path / "home"
    (home / ".agents" / "skills").mkdir(parents=True)
    (home / ".agents" / "skills" / "labcoat").symlink_to(ROOT / "skills", target_is_directory=True)
    (home / ".codex").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {"HOME": str(home), "CODEX_HOME": str(home / ".codex")}
    proc = npx(CODEX, "debug", "prompt-input", cwd=work, env=env)
    assert proc.returncode == 0, (
        f"codex debug prompt-input exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    )
    prompt = proc.stdout
    names = [p.parent.name for p in skill_files()]
    assert names, "no skills/<name>/SKILL.md to discover"
    missing = [n for n in names if not re.search(rf"(?:labcoat:|- ){re.escape(n)}:", prompt)]
    assert not missing, f"skills not in Codex's model-visible prompt: {missing}"
