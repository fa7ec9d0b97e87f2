"""Grid expansion and plan parsing (pure functions)."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.runs import grid, plans


def test_expand_product_and_names() -> None:
    params = grid.parse_params(["lr=1e-4,3e-4", "bs=8,16"])
    specs = grid.expand("s", params, "python train.py --lr {lr} --bs {bs} --home ${HOME}")
    assert [s["name"] for s in specs] == [
        "s-lr_1e-4-bs_8",
        "s-lr_1e-4-bs_16",
        "s-lr_3e-4-bs_8",
        "s-lr_3e-4-bs_16",
    ]
    assert specs[1]["command"] == "python train.py --lr 1e-4 --bs 16 --home ${HOME}"
    assert specs[1]["params"] == {"lr": "1e-4", "bs": "16"}


def test_values_are_shell_quoted_and_names_safe() -> None:
    specs = grid.expand("s", grid.parse_params(["opt=adam w"]), "python t.py --opt {opt}")
    assert specs[0]["command"] == "python t.py --opt 'adam w'"
    assert specs[0]["name"] == "s-opt_adam_w"


@pytest.mark.parametrize(
    ("items", "template", "message"),
    [
        (["lr"], "x {lr}", "expected NAME=V1,V2"),
        (["lr=1,,2"], "x {lr}", "empty value"),
        (["lr=1,1"], "x {lr}", "repeated value"),
        (["lr=1", "lr=2"], "x {lr}", "given twice"),
        (["lr=1"], "x {bs}", "no --param defines"),
        (["lr=1", "bs=2"], "x {lr}", "not used in --command"),
        (["a=x/y,x_y"], "t {a}", "give the same run name"),
    ],
)
def test_grid_errors(items: list[str], template: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        grid.expand("s", grid.parse_params(items), template)


def test_no_params() -> None:
    with pytest.raises(InputError, match="at least one --param"):
        grid.parse_params([])


def test_plan_title_and_goal() -> None:
    text = (
        "Intro\n\n# LR sweep for 125M\n\n## Goal\nFind the best LR\nunder 1 GPU-day.\n\n## Plan\n"
    )
    parsed = plans.parse_plan(text)
    assert parsed.title == "LR sweep for 125M"
    assert parsed.goal == "Find the best LR under 1 GPU-day."
    assert plans.parse_plan("# T\n**Goal:** beat baseline\n").goal == "beat baseline"
    assert plans.slug("LR sweep for 125M!") == "lr-sweep-for-125m"
    with pytest.raises(InputError, match="no markdown heading"):
        plans.parse_plan("just text")
