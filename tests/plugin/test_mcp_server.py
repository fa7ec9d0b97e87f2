"""(g) The plugin declares its MCP server; Claude Code starts it through bin/labcoat and connects,
and tool calls run through the launcher too (LABCOAT_LAUNCHER, set by the manifest)."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio

from .conftest import CLAUDE_CODE, LAUNCHER, ROOT, launcher_env, npx


def test_manifest_starts_the_server_through_the_launcher():
    server = json.loads((ROOT / ".claude-plugin/plugin.json").read_text())["mcpServers"]["labcoat"]
    assert server["command"] == "${CLAUDE_PLUGIN_ROOT}/bin/labcoat"
    assert server["args"] == ["mcp"]
    assert server["env"]["LABCOAT_LAUNCHER"] == "${CLAUDE_PLUGIN_ROOT}/bin/labcoat"


def test_claude_code_connects_to_the_plugin_server(tmp_path):
    # build labcoat's environment first: the health check below waits only seconds
    subprocess.run([str(LAUNCHER), "mcp", "--help"], env=launcher_env(), check=True,
                   capture_output=True)  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    env = launcher_env(HOME=str(home))
    proc = npx(CLAUDE_CODE, "--plugin-dir", str(ROOT), "mcp", "list", cwd=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    line = next((ln for ln in out.splitlines() if "plugin:labcoat:labcoat" in ln), "")
    assert "bin/labcoat mcp" in line and "Connected" in line, out[-3000:]


def test_tool_calls_go_through_the_launcher():
    from mcp import Client, StdioServerParameters

    env = launcher_env(LABCOAT_LAUNCHER=str(LAUNCHER))
    params = StdioServerParameters(command=str(LAUNCHER), args=["mcp"], env=env, cwd=str(ROOT))

    async def main():
        async with Client(params, mode="legacy", read_timeout_seconds=120) as client:
            return await client.call_tool("compute_chinchilla", {"tokens": 1.4e12})

    result = anyio.run(main)
    cli = subprocess.run(
        [sys.executable, "-m", "toolkit.compute", "chinchilla", "--tokens", "1.4e12", "--format",
         "json"], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    assert not result.is_error, result.content
    assert result.structured_content == json.loads(cli.stdout)
    assert result.meta["labcoat/command"].startswith(f"{LAUNCHER} compute chinchilla")
