"""Version awareness: pins read from the project, LC701 retired where torch >= 2.6 is assured."""

from __future__ import annotations

from pathlib import Path

from toolkit.static.check import check_paths
from toolkit.static.versions import parse_specs, versions_for, vtuple

LOAD = "import torch\nsd = torch.load('ckpt.pt', map_location='cpu')\n"


def test_parse_specs_reads_bounds() -> None:
    pins = parse_specs('install_requires=["torch>=1.8, <2.0", "transformers==4.40.1"]', "setup.py")
    assert (pins["torch"].low, pins["torch"].high) == ((1, 8), (2, 0))
    assert pins["transformers"].low == pins["transformers"].high == (4, 40, 1)
    assert "torch" not in parse_specs("torchvision>=0.20\ntorch_checkpointing>=0.1\n", "r.txt")
    assert vtuple("2.6.0+cu124") == (2, 6, 0)


def test_nearest_versioned_pin_wins_and_unversioned_falls_back(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["torch>=2.7"]\n')
    old = tmp_path / "old"
    old.mkdir()
    (old / "requirements.txt").write_text("torch<2.6\nnumpy\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "requirements.txt").write_text("torch\n")
    assert versions_for(old)["torch"].high == (2, 6) and versions_for(old)["torch"].low is None
    assert versions_for(plain)["torch"].low == (2, 7)  # unversioned here: the parent's pin


def test_lc701_retired_on_torch_2_6_and_kept_below(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    new, old = tmp_path / "new", tmp_path / "old"
    for d, pin in ((new, "torch>=2.6\n"), (old, "torch>=2.0,<2.6\n")):
        d.mkdir()
        (d / "requirements.txt").write_text(pin)
        (d / "load.py").write_text(LOAD)
    assert not [f for f in check_paths([new / "load.py"], select=["LC701"]).findings]
    (hit,) = check_paths([old / "load.py"], select=["LC701"]).findings
    assert "older than 2.6" in hit.message and "requirements.txt" in hit.message


def test_installed_versions_match_importlib_metadata() -> None:
    """The dist-info scan that spares importing importlib.metadata gives its answers."""
    from importlib import metadata

    from toolkit.static.versions import _dist_info_version

    for name in ("torch", "numpy", "pyflakes", "PyYAML", "nvidia-ml-py", "no-such-dist-xyz"):
        try:
            want: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            want = None
        got = _dist_info_version(name)
        if got is None:  # the scan deferred to importlib.metadata
            continue
        assert (got or None) == want, name
    assert _dist_info_version("torch") == metadata.version("torch")  # found by the scan


def test_installed_version_scan_defers_on_egg_info(tmp_path: Path, monkeypatch) -> None:
    import sys

    from toolkit.static.versions import _dist_info_version

    (tmp_path / "somepkg-1.2.dist-info").mkdir()
    (tmp_path / "otherpkg.egg-info").mkdir()
    (tmp_path / "twice-1.0.dist-info").mkdir()
    (tmp_path / "twice-2.0.dist-info").mkdir()
    (tmp_path / "somepkg_utils-9.9.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert _dist_info_version("somepkg") == "1.2"
    assert _dist_info_version("SomePkg") == "1.2"
    assert _dist_info_version("otherpkg") is None  # egg-info: importlib.metadata decides
    assert _dist_info_version("twice") is None  # ambiguous: importlib.metadata decides
    assert _dist_info_version("absent") == ""
