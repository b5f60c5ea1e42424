"""The leak guard itself: each place a secret must not show fails the test that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
_REPO = Path(__file__).resolve().parent.parent

_CONFTEST = """
import pytest
from tests import leakguard

SECRET = "s3cr3t-Value-0123456789"
leakguard.remember(SECRET)

@pytest.fixture
def isolated_env(tmp_path_factory):
    return tmp_path_factory.mktemp("home")
"""

_CASES = {
    "printed": "print(SECRET)",
    "on_stderr": "import sys; sys.stderr.write(SECRET)",
    "logged_at_debug": "import logging; logging.getLogger('filespace.x').debug('k=%s', SECRET)",
    "in_a_caught_exception": (
        "with pytest.raises(ValueError):\n        raise ValueError('bad ' + SECRET)"
    ),
    "in_a_caught_cause": (
        "with pytest.raises(KeyError):\n"
        "        try:\n"
        "            raise OSError(SECRET)\n"
        "        except OSError as exc:\n"
        "            raise KeyError('x') from exc"
    ),
    "in_a_failure": "assert SECRET == ''",
    "url_encoded_in_a_file": (
        "from urllib.parse import quote; (tmp_path / 'f.log').write_text(quote(SECRET, safe=''))"
    ),
    "utf16_in_a_file": "(tmp_path / 'f.txt').write_bytes(SECRET.encode('utf-16-le'))",
    "deep_in_a_binary_file": (
        "import os; (tmp_path / 'blob').write_bytes("
        "os.urandom(3 << 20) + SECRET.encode() + bytes(range(256)))"
    ),
}


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An inner pytest session that can import ``tests.leakguard``."""
    monkeypatch.setenv("PYTHONPATH", str(_REPO))
    return pytester


def _run(pytester: pytest.Pytester, body: str, *, marker: str = "") -> pytest.RunResult:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(
        "import pytest\nfrom conftest import SECRET\n\n"
        f"{marker}\ndef test_it(tmp_path):\n    {body}\n"
    )
    return pytester.runpytest_subprocess("-p", "tests.leakguard", "-q")


@pytest.mark.parametrize("case", sorted(_CASES))
def test_a_shown_secret_fails_the_test(pytester: pytest.Pytester, case: str) -> None:
    result = _run(pytester, _CASES[case])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*a secret was shown*"])


def test_a_test_that_shows_nothing_passes(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "print('nothing secret'); (tmp_path / 'f').write_text('plain')")
    result.assert_outcomes(passed=1)


def test_a_test_may_reveal_on_purpose(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "print(SECRET)", marker="@pytest.mark.reveals_secrets")
    result.assert_outcomes(passed=1)
