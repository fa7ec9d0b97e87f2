"""The marketplace works end to end: `plugin marketplace add` + `plugin install` in a fresh HOME."""

from .conftest import CLAUDE_CODE, ROOT, npx


def test_marketplace_add_and_install(tmp_path):
    env = {"HOME": str(tmp_path)}
    steps = [
        ("plugin", "marketplace", "add", str(ROOT)),
        ("plugin", "install", "labcoat@labcoat"),
        ("plugin", "list"),
    ]
    out = ""
    for args in steps:
        proc = npx(CLAUDE_CODE, *args, cwd=tmp_path, env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, (
            f"claude {' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}"
        )
    assert "labcoat@labcoat" in out and "0.1.0" in out, out[-3000:]
