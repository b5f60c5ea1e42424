"""The suite's own plugins: a required part that is missing fails the run; seeds replay."""

from __future__ import annotations

import pytest

from tests import pgcluster, requirements, seeds

pytest_plugins = ["pytester"]

_CONFTEST = 'pytest_plugins = ["tests.requirements", "tests.seeds"]\n'

_SKIPPING = """
import pytest
from tests import requirements

def test_needs_postgresql():
    requirements.skip("postgresql", "no server here")

@pytest.mark.skipif(True, reason=requirements.reason("fuse", "no /dev/fuse here"))
def test_needs_fuse():
    pass

def test_skips_for_another_reason():
    pytest.skip("not this platform")

@pytest.mark.xfail(reason="requires postgresql: an expected failure is not a skip")
def test_expected_to_fail():
    raise AssertionError

def test_runs():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A small suite whose tests skip for missing parts, with the plugins loaded."""
    monkeypatch.delenv(requirements.REQUIRE_ENV, raising=False)
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(test_parts=_SKIPPING)
    return pytester


def test_nothing_required_skips_saying_why(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "required parts: none (FILESPACE_TEST_REQUIRE)",
            "*SKIPPED*requires postgresql: no server here*",
            "*SKIPPED*requires fuse: no /dev/fuse here*",
        ]
    )
    assert "required parts missing" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK


def test_a_required_part_that_skips_fails(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(requirements.REQUIRE_ENV, "postgresql")
    result = suite.runpytest()
    # The skip in the test body fails the test; fuse is not required: it still skips.
    result.assert_outcomes(passed=1, failed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*postgresql is required (FILESPACE_TEST_REQUIRE=postgresql) "
            "but the test skipped: requires postgresql: no server here*",
            "*required parts missing*",
            "postgresql (a PostgreSQL server*): 1 test(s), e.g.",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_every_required_part_that_skips_fails(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(requirements.REQUIRE_ENV, " postgresql , fuse ")
    result = suite.runpytest()
    # A skipif marker skips in setup: that turns into an error of the test.
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*fuse is required*but the test skipped: requires fuse*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_module_level_skip_of_a_required_part_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(requirements.REQUIRE_ENV, "fuse")
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(
        test_module="""
import pytest
from tests import requirements
pytest.skip(requirements.reason("fuse", "cannot mount"), allow_module_level=True)

def test_never_collected():
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fuse is required*requires fuse: cannot mount*"])


def test_an_unknown_required_part_is_a_usage_error(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(requirements.REQUIRE_ENV, "postgresql,postgres")
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*FILESPACE_TEST_REQUIRE names unknown groups postgres;*"])


def test_a_reason_names_a_known_group() -> None:
    assert requirements.reason("fuse", "x") == "requires fuse: x"
    with pytest.raises(ValueError, match="unknown requirement group 'rabbit'"):
        requirements.reason("rabbit", "x")


_RANDOM = """
def test_chooses(rng):
    print("choice", rng.randrange(10**9))
    assert False

def test_chooses_too(rng):
    print("other", rng.randrange(10**9))
    assert False
"""


def test_a_failing_test_names_the_seed_that_replays_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(test_random=_RANDOM)
    monkeypatch.setenv(seeds.SEED_ENV, "1234")
    whole = pytester.runpytest()
    whole.assert_outcomes(failed=2)
    whole.stdout.fnmatch_lines(
        ["random seed: FILESPACE_TEST_SEED=1234", "*FILESPACE_TEST_SEED=1234 replays*"]
    )
    chosen = [line for line in whole.outlines if line.startswith(("choice", "other"))]
    assert len(chosen) == 2
    # The same seed makes the same choices, whether the test runs alone or not.
    alone = pytester.runpytest("-k", "test_chooses_too")
    assert [line for line in alone.outlines if line.startswith("other")] == chosen[1:]
    monkeypatch.setenv(seeds.SEED_ENV, "1235")
    other = pytester.runpytest()
    assert [line for line in other.outlines if line.startswith(("choice", "other"))] != chosen


def test_a_seed_that_is_not_a_number_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(test_random=_RANDOM)
    monkeypatch.setenv(seeds.SEED_ENV, "abc")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*FILESPACE_TEST_SEED must be an integer, not 'abc'*"])


def test_without_initdb_a_throw_away_cluster_is_a_missing_requirement(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pgcluster, "find_bindir", lambda: None)  # no server package here
    pytester.makeconftest('pytest_plugins = ["tests.requirements", "tests.pgcluster"]\n')
    pytester.makepyfile(test_restart="def test_restarts(pg_cluster):\n    pg_cluster.restart()\n")
    monkeypatch.delenv(requirements.REQUIRE_ENV, raising=False)
    by_hand = pytester.runpytest("-rs")
    by_hand.assert_outcomes(skipped=1)
    by_hand.stdout.fnmatch_lines(["*SKIPPED*requires postgresql: no initdb/pg_ctl*"])
    monkeypatch.setenv(requirements.REQUIRE_ENV, "postgresql")
    in_ci = pytester.runpytest()
    in_ci.assert_outcomes(errors=1)
    in_ci.stdout.fnmatch_lines(["*postgresql is required*no initdb/pg_ctl*"])
