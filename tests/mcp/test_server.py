"""Drive ``python -m toolkit.mcp`` with the official SDK's stdio client, as Claude Code or Codex
would: tools and their schemas, results equal to the CLI's ``--format json``, bad arguments,
progress and cancellation of runtime validation, resources."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from toolkit.logs import synth

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "static" / "fixtures"


def _client() -> Client:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "toolkit.mcp"], cwd=str(ROOT)
    )
    return Client(params, mode="legacy", read_timeout_seconds=120)


def _session(body):
    async def main():
        async with _client() as client:
            return await body(client)

    return anyio.run(main)


def _cli(*argv: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", *argv, "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.returncode, done.stdout


def test_tools_have_object_schemas_from_the_cli_parsers():
    listed = _session(lambda c: c.list_tools())
    tools = {t.name: t for t in listed.tools}
    assert len(tools) >= 12
    for t in tools.values():
        assert t.input_schema["type"] == "object", t.name
        assert isinstance(t.input_schema["properties"], dict), t.name
    expected = {"static_check", "static_rules", "runtime_validate", "mfu", "compute_memory",
                "compute_kv_cache", "compute_time", "compute_chinchilla", "hardware_specs",
                "hardware_detect", "hardware_launch", "hardware_free_gpus", "logs_analyze",
                "logs_compare", "plan_lint", "runs_list", "runs_create", "runs_start",
                "runs_cancel", "runs_logs", "sweep_grid", "watchdog_status",
                "autoresearch_status", "autoresearch_brief", "autoresearch_judge",
                "iterate_judge"}  # fmt: skip
    assert expected <= set(tools)
    memory = tools["compute_memory"].input_schema["properties"]
    # read off the parser: choices, bounds of toolkit.cli.positive_int, defaults, help text
    assert memory["zero_stage"]["enum"] == [0, 1, 2, 3]
    assert memory["gpus"] == {**memory["gpus"], "type": "integer", "minimum": 1, "default": 1}
    assert memory["no_dropout"]["type"] == "boolean"
    assert "format" not in memory and "help" not in memory
    assert tools["static_check"].input_schema["required"] == ["paths"]
    assert "follow" not in tools["runs_logs"].input_schema["properties"]
    assert tools["runs_cancel"].annotations.destructive_hint is True
    assert tools["compute_time"].annotations.read_only_hint is True


def test_results_are_the_cli_json(tmp_path):
    log = synth.write_jsonl(tmp_path / "run.jsonl", synth.healthy_run(steps=400, seed=3))
    png = tmp_path / "curves.png"
    calls = [
        ("compute_chinchilla", {"compute": 5.88e23}, ["toolkit.compute", "chinchilla", "--compute", "5.88e23"]),
        ("compute_memory", {"preset": "llama-3-8b", "gpus": 8, "zero_stage": 3, "no_dropout": True},
         ["toolkit.compute", "memory", "--preset", "llama-3-8b", "--gpus", "8", "--zero-stage", "3", "--no-dropout"]),
        ("compute_kv_cache", {"preset": "llama-3-8b", "batch": 4, "context": 8192},
         ["toolkit.compute", "kv-cache", "--preset", "llama-3-8b", "--batch", "4", "--context", "8192"]),
        ("hardware_specs", {"gpu": "h100-sxm"}, ["toolkit.hardware", "specs", "--gpu", "h100-sxm"]),
        ("mfu", {"preset": "gpt2", "seq_len": 1024, "tokens_per_sec": 2.5e5, "gpu": "a100-sxm-80gb"},
         ["toolkit.profiling.mfu_calculator", "--preset", "gpt2", "--seq-len", "1024",
          "--tokens-per-sec", "2.5e5", "--gpu", "a100-sxm-80gb"]),
        ("static_check", {"paths": [str(FIXTURES / "LC101.py")], "no_config": True},
         ["toolkit.static.check", str(FIXTURES / "LC101.py"), "--no-config"]),
        ("logs_analyze", {"path": str(log), "plot": str(png)},
         ["toolkit.logs", "analyze", str(log), "--plot", str(png)]),
    ]  # fmt: skip

    async def body(client):
        return [await client.call_tool(name, args) for name, args, _ in calls]

    results = _session(body)
    for (name, _, argv), result in zip(calls, results, strict=True):
        code, out = _cli(*argv)
        assert not result.is_error, (name, result.content)
        data = json.loads(out)
        # MCP structured content is an object: a JSON array (hardware specs) comes as {"result": [...]}
        assert result.structured_content == (data if isinstance(data, dict) else {"result": data})
        assert result.content[0].text == out.strip(), name
        assert result.meta["labcoat/exit_code"] == code, name
    assert (
        sum(
            isinstance(r.structured_content, dict) and "result" not in r.structured_content
            for r in results
        )
        >= 5
    )
    assert results[5].meta["labcoat/exit_code"] == 1  # findings: a result, not a tool error
    image = results[6].content[-1]
    assert image.type == "image" and image.mime_type == "image/png"
    assert base64.b64decode(image.data) == png.read_bytes()


def test_bad_arguments_are_tool_errors_naming_the_field():
    cases = [
        ("compute_memory", {"preset": "gpt2", "gpus": 0}, ["gpus", "positive integer"]),
        ("compute_memory", {"preset": "gpt2", "zero_stage": 7}, ["zero_stage", "invalid choice"]),
        ("compute_memory", {"preset": "gpt2", "gpu_count": 2}, ["gpu_count", "unknown argument"]),
        ("compute_memory", {"gpus": 2}, ["config, preset", "required"]),
        ("compute_chinchilla", {"params": "lots"}, ["params", "positive number", "'lots'"]),
        ("static_check", {"paths": "x.py"}, ["paths", "expected an array"]),
        # caught by the command itself (exit 2), after parsing
        ("compute_time", {"params": 1e9, "tokens": 2e10}, ["gpu, peak_tflops", "exactly one"]),
    ]

    async def body(client):
        return [await client.call_tool(name, args) for name, args, _ in cases]

    for (name, args, needles), result in zip(cases, _session(body), strict=True):
        assert result.is_error, (name, args)
        text = result.content[0].text
        for needle in needles:
            assert needle in text, (name, text)
        assert "Traceback" not in text


def _alive(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def test_runtime_validation_reports_progress_and_stops_on_cancel(tmp_path):
    script = tmp_path / "slow_train.py"
    script.write_text((Path(__file__).parent / "slow_train.py").read_text())
    messages: list[str] = []
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if "script step" in (message or ""):
            started.set()

    async def body(client):
        args = {"script": str(script), "steps": 100000, "max_seconds": 600, "skip_l0": True}
        async with anyio.create_task_group() as tg:

            async def call():
                await client.call_tool("runtime_validate", args, progress_callback=on_progress)

            tg.start_soon(call)
            with anyio.fail_after(90):
                await started.wait()
            assert _alive(str(script)), "the runner should be running the script"
            tg.cancel_scope.cancel()
        t0 = time.monotonic()
        while _alive(str(script)) and time.monotonic() - t0 < 15:
            await anyio.sleep(0.2)
        left = _alive(str(script))
        after = await client.call_tool("compute_chinchilla", {"params": 1e9})
        return left, after

    left, after = _session(body)
    assert left == [], "cancelling the call must stop the runner's process"
    assert any("script step" in m for m in messages), messages
    assert not after.is_error  # the server keeps serving after a cancelled call


def test_knowledge_and_rule_catalogue_are_resources():
    async def body(client):
        listed = await client.list_resources()
        static = await client.read_resource("labcoat://rules/static")
        doc = await client.read_resource("labcoat://knowledge/scaling-laws")
        rule = await client.read_resource("labcoat://rules/static/LC101")
        return listed, static, doc, rule

    listed, static, doc, rule = _session(body)
    uris = {r.uri for r in listed.resources}
    docs = {f"labcoat://knowledge/{p.stem}" for p in (ROOT / "knowledge").glob("*.md")}
    assert docs | {"labcoat://rules/static", "labcoat://rules/plan"} <= uris
    _, out = _cli("toolkit.static.rules")
    assert json.loads(static.contents[0].text) == json.loads(out)
    assert doc.contents[0].text == (ROOT / "knowledge" / "scaling-laws.md").read_text()
    assert json.loads(rule.contents[0].text)["code"] == "LC101"


def test_import_is_light():
    code = "import sys, toolkit.mcp.__main__; print(sorted(m for m in ('torch', 'mcp') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert out.stdout.strip() == "[]"


def test_commands_go_through_the_launcher_when_the_plugin_says_so(monkeypatch):
    from toolkit.mcp import runner

    monkeypatch.delenv(runner.LAUNCHER_ENV, raising=False)
    cmd, env = runner.command("toolkit.compute", ["memory", "--format=json"])
    assert cmd == [sys.executable, "-m", "toolkit.compute", "memory", "--format=json"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    assert env["LABCOAT_PROGRESS"] == "1"
    monkeypatch.setenv(runner.LAUNCHER_ENV, "/plugin/bin/labcoat")
    cmd, _ = runner.command("toolkit.profiling.l0_runner", ["--steps=3"])
    assert cmd == ["/plugin/bin/labcoat", "profiling.l0_runner", "--steps=3"]


def test_docs_list_every_tool():
    import re

    from toolkit.mcp.tools import VERBS

    text = (ROOT / "docs" / "mcp.md").read_text()
    listed = re.findall(r"^\| `(\w+)` \| `python -m ([\w.]+)((?: [\w-]+)*)`", text, re.M)
    assert sorted(n for n, _, _ in listed) == sorted(v.name for v in VERBS)
    for name, module, path in listed:
        verb = next(v for v in VERBS if v.name == name)
        assert (module, tuple(path.split())) == (verb.module, verb.path), name
