"""(e) one plugin.json source; marketplace and Codex manifests point at this plugin."""

import json

from .conftest import ROOT


def load(path):
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def test_top_level_plugin_json_is_identical_to_claude_plugin_json():
    source = (ROOT / ".claude-plugin/plugin.json").read_bytes()
    copy = (ROOT / "plugin.json").read_bytes()
    assert copy == source, (
        "plugin.json must be a byte-for-byte copy of .claude-plugin/plugin.json (the source): cp .claude-plugin/plugin.json plugin.json"
    )


def test_plugin_json_fields():
    m = load(".claude-plugin/plugin.json")
    assert m["name"] == "labcoat"
    assert m["version"] == "0.1.0"
    assert m["license"] == "MIT"
    assert m["description"] and m["keywords"]


def test_no_invented_urls_or_authors():
    """The manifests and README once named a GitHub repository and an author that do not exist.
    A URL or author goes back in only when it is real (and this test is updated with it)."""
    for path in (".claude-plugin/plugin.json", ".codex-plugin/plugin.json", "plugin.json"):
        m = load(path)
        assert not {"homepage", "repository"} & set(m), path
        assert m["author"] == {"name": "labcoat contributors"}, path  # no invented person
    for path in ("README.md", "docs/codex.md", ".claude-plugin/marketplace.json"):
        assert "github.com/labcoat" not in (ROOT / path).read_text(), path


def test_marketplace_lists_this_plugin():
    plugin = load(".claude-plugin/plugin.json")
    market = load(".claude-plugin/marketplace.json")
    assert market["name"] and market["owner"]["name"]
    entries = {e["name"]: e for e in market["plugins"]}
    assert "labcoat" in entries
    entry = entries["labcoat"]
    assert entry["source"] == "./", "the plugin is the marketplace root"
    assert entry.get("version", plugin["version"]) == plugin["version"]


def test_codex_manifest():
    plugin = load(".claude-plugin/plugin.json")
    codex = load(".codex-plugin/plugin.json")
    assert codex["skills"] == "./skills/"
    assert codex["hooks"] == {}
    for key in ("name", "version", "description", "license"):
        assert codex[key] == plugin[key], (
            f".codex-plugin/plugin.json {key} differs from .claude-plugin/plugin.json"
        )
    assert sorted(p.name for p in (ROOT / ".codex-plugin").iterdir()) == ["plugin.json"]
