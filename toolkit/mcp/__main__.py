"""``python -m toolkit.mcp [--list-tools]``: the toolkit's verbs as MCP tools over stdio."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.cli import EXIT_OK, Parser, print_json, run

PROG = "python -m toolkit.mcp"

DESCRIPTION = """\
A Model Context Protocol server over stdio (for Claude Code, Codex, Cursor and other clients).

Tools: the toolkit's verbs (static check, runtime validation, MFU, compute estimates, hardware,
logs, plan lint, runs, sweeps, watchdog, autoresearch, iterate). Each tool's input schema is
read off the same argparse parser as the CLI; a call runs `python -m toolkit.<area> <verb> ...
--format json` and returns that JSON as structured content. Long calls report progress and
stop (the child process group is terminated) when the client cancels.

Resources: labcoat://knowledge/<doc> (knowledge/*.md), labcoat://rules/static,
labcoat://rules/plan, labcoat://rules/static/{code}.

Started by a client, not by hand: it speaks JSON-RPC on stdin/stdout.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    parser.add_argument(
        "--list-tools",
        action="store_true",
        help="print every tool (name, description, input schema) as JSON and exit",
    )
    args = parser.parse_args(argv)
    if args.list_tools:
        from toolkit.mcp import tools

        print_json(
            [
                {"name": n, "description": t.description, "input_schema": t.input_schema}
                for n, t in tools.load_all().items()
            ]
        )
        return EXIT_OK
    import anyio

    from toolkit.mcp.server import serve

    anyio.run(serve)
    return EXIT_OK


if __name__ == "__main__":
    run(main, PROG)
