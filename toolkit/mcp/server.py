"""The MCP server: the toolkit's verbs as tools, its knowledge docs and rule catalogues as
resources, on the official ``mcp`` SDK's low-level server over stdio.

A tool call is validated against the command's own argparse parser in-process (a bad argument is
a tool error naming the field), then runs the command as ``python -m ... --format json`` in a
child process (:mod:`toolkit.mcp.runner`); its JSON output is the result's structured content,
unchanged. Nothing here imports torch; the tool table is built off the event loop on first use.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

import toolkit
from toolkit.cli import EXIT_USAGE
from toolkit.mcp import resources, runner, schema

INSTRUCTIONS = """\
labcoat: measurements an ML coding agent should not do by hand. Every tool runs one toolkit \
command (`python -m toolkit.<area> <verb> --format json`) and returns its JSON unchanged as \
structured content; exit 1 (findings reported, check failed) is a result, not an error. \
Paths are relative to the server's working directory. Knowledge docs and the rule catalogues \
are resources (labcoat://knowledge/..., labcoat://rules/...)."""

_tools: dict[str, Any] | None = None
_tools_lock = anyio.Lock()


async def _all_tools() -> dict[str, Any]:
    """The tool table, built once in a worker thread (imports every command's parser)."""
    global _tools
    async with _tools_lock:
        if _tools is None:
            from toolkit.mcp import tools

            _tools = await anyio.to_thread.run_sync(tools.load_all)
    return _tools


def _annotations(tool: Any) -> types.ToolAnnotations:
    verb = tool.verb
    return types.ToolAnnotations(
        title=verb.command,
        read_only_hint=verb.read_only,
        destructive_hint=not verb.read_only,
        open_world_hint=False,
    )


async def list_tools(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name=name,
                description=tool.description,
                input_schema=tool.input_schema,
                annotations=_annotations(tool),
            )
            for name, tool in (await _all_tools()).items()
        ]
    )


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def result_of(tool: Any, done: runner.Completed, arguments: dict[str, Any]) -> types.CallToolResult:
    """A finished command as a tool result: its JSON as structured content (and as text), the
    exit code in ``_meta``; exit 2 (usage/input error) or no JSON is a tool error."""
    command = f"{tool.verb.command} (exit {done.returncode})"
    if done.returncode == EXIT_USAGE:
        message = _tail(done.stderr, 5) or "usage or input error"
        return _error(schema.name_fields(message, tool.fields))
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return _error(f"{command} printed no JSON; stderr:\n{_tail(done.stderr)}")
    content: list[Any] = [types.TextContent(type="text", text=done.stdout.strip())]
    image = tool.verb.image_field and arguments.get(tool.verb.image_field)
    if image and Path(image).is_file():
        png = base64.b64encode(Path(image).read_bytes()).decode("ascii")
        content.append(types.ImageContent(type="image", data=png, mime_type="image/png"))
    return types.CallToolResult(
        content=content,
        structured_content=data if isinstance(data, dict) else {"result": data},
        is_error=False,
        meta={
            "labcoat/exit_code": done.returncode,
            "labcoat/wall_s": round(done.wall_s, 3),
            "labcoat/command": shlex.join(done.command),
        },
    )


async def call_tool(
    ctx: ServerRequestContext, params: types.CallToolRequestParams
) -> types.CallToolResult:
    tools = await _all_tools()
    tool = tools.get(params.name)
    if tool is None:
        raise MCPError(
            types.INVALID_PARAMS, f"unknown tool {params.name!r}; expected one of {sorted(tools)}"
        )
    arguments = dict(params.arguments or {})
    try:
        argv = tool.argv(arguments)
    except schema.ArgumentProblem as exc:
        return _error(f"invalid arguments for {params.name}: {exc}")

    async def progress(elapsed_s: float, message: str) -> None:
        await ctx.session.report_progress(elapsed_s, None, message)

    done = await runner.run(tool.verb.module, argv, progress)
    return result_of(tool, done, arguments)


async def list_resources(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(
        resources=[
            types.Resource(name=r.name, uri=r.uri, description=r.description, mime_type=r.mime)
            for r in resources.catalogue()
        ]
    )


async def list_resource_templates(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(
        resource_templates=[
            types.ResourceTemplate(
                name="static-rule",
                uri_template=resources.RULE_TEMPLATE,
                description="one static-analysis rule (code, doc, fix, severity) as JSON",
                mime_type="application/json",
            )
        ]
    )


async def read_resource(
    ctx: ServerRequestContext, params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    try:
        mime, text = await anyio.to_thread.run_sync(resources.read, uri)
    except KeyError as exc:
        raise MCPError(types.INVALID_PARAMS, str(exc.args[0])) from None
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)]
    )


def build() -> Server:
    return Server(
        "labcoat",
        version=toolkit.__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )


async def serve() -> None:
    server = build()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
