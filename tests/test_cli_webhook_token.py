"""``filespace connect webhook-token set|clear``: set, rotate and clear without argv or output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import filespace
from tests import leakguard
from tests.bucket_events import as_message
from tests.cli_helpers import Cli
from tests.dumps import EngineDump
from tests.test_cli_follow import follow_cli  # noqa: F401
from tests.test_follow_webhook import _free_port, listening, post

pytest_plugins = ["tests.cli_helpers"]


@pytest.fixture
def cli(engine_name: str, request: pytest.FixtureRequest) -> Cli:
    """A filespace on each engine with data store ``store`` (``follow_cli``)."""
    found: Cli = request.getfixturevalue("follow_cli")
    return found


def new_token(cli: Cli) -> str:
    token = "wh-" + os.urandom(16).hex()
    leakguard.remember(token)
    cli.secrets.append(token)  # every run checks that its output does not hold it
    return token


def answers(cli: Cli, *tokens: str) -> list[int]:
    """What a webhook listener of this filespace answers a POST with each token."""
    with cli.api() as fsp, listening(fsp) as (port, _):
        return [post(port, as_message([]), f"Bearer {token}")[0] for token in tokens]


def test_set_rotate_and_clear_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    first, second, third = new_token(cli), new_token(cli), new_token(cli)
    done = cli.ok("connect", "webhook-token", "set", "--token-file", "-", stdin=first + "\n")
    assert (done.out, done.err) == ("webhook token set on 'followed'\n", "")
    assert answers(cli, first) == [200]

    path = tmp_path / "token"
    path.write_text(second + "\n")
    cli.ok("connect", "webhook-token", "set", "--token-file", str(path))  # rotated
    path.unlink()  # its job is done (a file holding a secret is not left behind)
    assert answers(cli, first, second) == [401, 200]

    env = {"FILESPACE_WEBHOOK_TOKEN": third}
    doc = cli.ok("connect", "webhook-token", "set", "--json", env=env).json()
    assert doc == {"webhook_token": "set"}
    assert answers(cli, second, third) == [401, 200]
    with cli.api() as fsp:
        dump = EngineDump(fsp.engine_url, fsp.engine_url, None)
    try:
        stored = json.dumps(dump(), default=repr)
    finally:
        dump.close()
    assert third not in stored  # sealed

    cleared = cli.ok("connect", "webhook-token", "clear")
    assert cleared.out == "webhook token cleared on 'followed'\n"
    with cli.api() as fsp:
        follower = fsp.connect.follow(
            f"http://127.0.0.1:{_free_port()}/", data_store_name="store", dest_dir="/w"
        )
        with pytest.raises(filespace.FeedError, match="no webhook token is set"):
            follower.run(until="drained")
    assert cli.ok("connect", "webhook-token", "clear", "--json").json() == {
        "webhook_token": "cleared"
    }


def test_a_hidden_prompt_on_a_terminal(cli: Cli) -> None:
    token = new_token(cli)
    code, text = cli.on_terminal(
        "connect", "webhook-token", "set", answer=token + "\n", after="Webhook token"
    )
    assert code == 0, text
    assert "webhook token set on 'followed'" in text
    assert answers(cli, token) == [200]


def test_bad_tokens_are_one_error_line_without_the_token(cli: Cli, tmp_path: Path) -> None:
    short = "short-" + os.urandom(4).hex()
    leakguard.remember(short)
    refused = cli.fails("connect", "webhook-token", "set", "--token-file", "-", stdin=short)
    assert refused.err == (
        "error: the webhook token must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -\n"
    )
    spaced = "a token with spaces in it"
    failed = cli.fails("connect", "webhook-token", "set", env={"FILESPACE_WEBHOOK_TOKEN": spaced})
    assert failed.err.startswith("error: the webhook token must be") and spaced not in failed.err
    for stdin, why in (("", "stdin held no token"), ("a\nb\n", "the token must be a single line")):
        failed = cli.fails("connect", "webhook-token", "set", "--token-file", "-", stdin=stdin)
        assert why in failed.err
    none = cli.fails("connect", "webhook-token", "set")
    assert none.err == (
        "error: no token: give --token-file PATH (- for stdin) or set FILESPACE_WEBHOOK_TOKEN\n"
    )
    missing = cli.fails(
        "connect", "webhook-token", "set", "--token-file", str(tmp_path / "missing")
    )
    assert missing.err.startswith("error: cannot read the token from ")
    usage = cli.usage_error("connect", "webhook-token", "set", "a-token-in-argv-1234567")
    assert "unexpected extra argument" in usage.err.lower()
