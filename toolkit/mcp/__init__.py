"""``python -m toolkit.mcp``: the toolkit as an MCP server (stdio) for any agent client.

Kept light: importing this package imports neither the SDK nor torch.
"""
