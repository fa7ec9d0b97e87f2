"""Suite-wide hooks: the real one-node Slurm cluster starts in the background as soon as
collection finds tests that need it (tests/slurm), so its install and start (and the 1-minute jobs
of tests/slurm/long_jobs.py) overlap the tests that run before them. See tests/slurm/conftest.py."""

from __future__ import annotations

import pytest

from tests.slurm import cluster


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(cluster.needs_cluster(item) for item in session.items):
        cluster.start_in_background(any(cluster.needs_long_jobs(i) for i in session.items))


def pytest_sessionfinish(session: pytest.Session) -> None:
    cluster.stop()
