from __future__ import annotations

import pytest

from toolkit.logs import synth


@pytest.fixture
def healthy():
    return synth.healthy_run(steps=3000, seed=0)
