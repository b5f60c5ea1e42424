"""Seeded randomness: every random choice a test makes can be replayed.

A run has one seed, ``FILESPACE_TEST_SEED`` if set, else a new one shown in
the header. The ``rng`` fixture gives each test its own ``random.Random``
seeded from the run's seed and the test's id, so a test makes the same
choices alone or in a full run; a failing test that used it names the seed
that replays it. Hypothesis prints its failing example and the blob that
replays it.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Generator

import pytest
from hypothesis import settings

SEED_ENV = "FILESPACE_TEST_SEED"

settings.register_profile("filespace", print_blob=True)
settings.load_profile("filespace")

_SEED = pytest.StashKey[int]()


def run_seed() -> int:
    """The seed of this run: ``FILESPACE_TEST_SEED``, or a new one."""
    given = os.environ.get(SEED_ENV, "").strip()
    if not given:
        return secrets.randbits(32)
    try:
        return int(given)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV} must be an integer, not {given!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SEED] = run_seed()


def pytest_report_header(config: pytest.Config) -> str:
    return f"random seed: {SEED_ENV}={config.stash[_SEED]}"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """This test's random choices: seeded from the run's seed and the test's id."""
    return random.Random(f"{request.config.stash[_SEED]}:{request.node.nodeid}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "rng" in getattr(item, "fixturenames", ()):
        seed = item.config.stash[_SEED]
        report.sections.append(
            ("random seed", f"{SEED_ENV}={seed} replays this test's random choices")
        )
    return report
