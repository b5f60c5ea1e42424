"""Required parts: a skip for a missing part that CI requires fails the test instead.

Tests that need a part of the machine (a PostgreSQL server, FUSE) skip when it
is missing, with a reason made by :func:`reason` ("requires postgresql: ...").
``FILESPACE_TEST_REQUIRE`` names the parts that must be there, comma-separated
(``.ci/run`` sets it): a skip naming one of them becomes a failure, and the
end of the run lists what was missing. Run by hand without the variable, the
same tests skip and say why.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import NoReturn

import pytest

REQUIRE_ENV = "FILESPACE_TEST_REQUIRE"

# The parts a test may require, and what provides each (.ci/run requires them all).
GROUPS = {
    "postgresql": "a PostgreSQL server (FILESPACE_TEST_POSTGRES) and its initdb/pg_ctl",
    "fuse": "FUSE mounts (/dev/fuse, fusermount3, libfuse3)",
    "rabbitmq": "RabbitMQ on 127.0.0.1:5672 (FILESPACE_TEST_AMQP), for the follow tests",
    "nats": "NATS with JetStream on 127.0.0.1:4222 (FILESPACE_TEST_NATS), for the follow tests",
}

_PREFIX = "requires "


def reason(group: str, why: str) -> str:
    """A skip reason saying that ``group`` is missing, and why."""
    if group not in GROUPS:
        raise ValueError(f"unknown requirement group {group!r}; known: {', '.join(GROUPS)}")
    return f"{_PREFIX}{group}: {why}"


def skip(group: str, why: str) -> NoReturn:
    """Skip the test because ``group`` is missing (a failure where it is required)."""
    pytest.skip(reason(group, why))


def required() -> frozenset[str]:
    """The groups ``FILESPACE_TEST_REQUIRE`` names; ``UsageError`` for an unknown one."""
    names = {n.strip() for n in os.environ.get(REQUIRE_ENV, "").split(",") if n.strip()}
    unknown = sorted(names - GROUPS.keys())
    if unknown:
        raise pytest.UsageError(
            f"{REQUIRE_ENV} names unknown groups {', '.join(unknown)}; known: {', '.join(GROUPS)}"
        )
    return frozenset(names)


def _group_of(message: str) -> str | None:
    """The group a skip message names, if it was made by :func:`reason`."""
    if not message.startswith(_PREFIX):
        return None
    group = message[len(_PREFIX) :].partition(":")[0]
    return group if group in GROUPS else None


def _skip_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


_REQUIRED = pytest.StashKey[frozenset[str]]()
_MISSING = pytest.StashKey[dict[str, list[str]]]()  # group -> "nodeid: reason" per failure


def _enforce(report: pytest.TestReport | pytest.CollectReport, config: pytest.Config) -> None:
    wanted = config.stash[_REQUIRED]
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    message = _skip_message(report).removeprefix("Skipped: ")
    group = _group_of(message)
    if group is None or group not in wanted:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{group} is required ({REQUIRE_ENV}={','.join(sorted(wanted))}) "
        f"but the test skipped: {message}"
    )
    config.stash[_MISSING].setdefault(group, []).append(f"{report.nodeid}: {message}")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REQUIRED] = required()
    config.stash[_MISSING] = {}


# Outermost (tryfirst), so the report is judged after every other plugin made it.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _enforce(report, item.config)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _enforce(report, collector.config)
    return report


def pytest_report_header(config: pytest.Config) -> str:
    wanted = config.stash[_REQUIRED]
    return f"required parts: {', '.join(sorted(wanted)) if wanted else 'none'} ({REQUIRE_ENV})"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    missing = config.stash[_MISSING]
    if not missing:
        return
    terminalreporter.section("required parts missing", red=True)
    for group, tests in sorted(missing.items()):
        terminalreporter.line(f"{group} ({GROUPS[group]}): {len(tests)} test(s), e.g.")
        terminalreporter.line(f"  {tests[0]}")
