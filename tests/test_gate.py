"""Whether Connect may be used (``connect.gate``), on a real engine of each kind."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import filespace
from filespace.connect.gate import FIRST_CONNECT_FORMAT, Gate
from filespace.meta import Engine, open_engine
from filespace.sealing import Sealer
from tests.fsfixtures import postgres_schema_url

NOT_ENABLED = (
    "Connect is not enabled on this filespace: call fsp.connect.enable() "
    "or run `filespace connect enable`"
)


@pytest.fixture
def engine(engine_name: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine of a filespace of format 8 (before Connect); tests move it on."""
    settings = {"filespace_id": "g", "format_version": str(FIRST_CONNECT_FORMAT - 1)}
    if engine_name == "sqlite":
        opened = open_engine(f"sqlite://{tmp_path}/meta.db")
        opened.initialize(settings, time.time_ns())
        yield opened
        opened.close()
        return
    with postgres_schema_url() as url:
        opened = open_engine(url)
        opened.initialize(settings, time.time_ns())
        yield opened
        opened.close()


class Keys:
    """The sealer of a keyholder, counting how often it was asked for."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self) -> Sealer:
        self.asked += 1
        return Sealer(bytes(32), "g", "k")


def test_an_older_format_says_how_to_upgrade(engine: Engine) -> None:
    engine.set_setting("connect_enabled", "1")  # (as if): the format still decides
    gate = Gate(engine, Keys(), "/where/it/is")
    message = (
        "Connect needs filespace format 9 or newer; this one is format 8: upgrade it with "
        "filespace.upgrade('/where/it/is') or `filespace upgrade LOCATION`"
    )
    assert not gate.available()
    for refused in (gate.require, gate.enable):
        with pytest.raises(filespace.ConnectUnavailableError, match=f"^{re.escape(message)}$"):
            refused()
    gate.disable()  # nothing to turn off
    assert engine.settings()["connect_enabled"] == "1"


def test_enable_and_disable(engine: Engine) -> None:
    engine.set_setting("format_version", str(FIRST_CONNECT_FORMAT))
    keys = Keys()
    gate = Gate(engine, keys, "loc")
    with pytest.raises(filespace.ConnectUnavailableError, match=f"^{re.escape(NOT_ENABLED)}$"):
        gate.require()
    gate.enable()
    assert keys.asked == 1 and engine.settings()["connect_enabled"] == "1"
    gate.require()
    gate.disable()
    assert not gate.available() and engine.settings()["connect_enabled"] != "1"
    with pytest.raises(filespace.ConnectUnavailableError, match=f"^{re.escape(NOT_ENABLED)}$"):
        gate.require()


def test_a_client_keeps_the_answer_that_connect_is_enabled(engine: Engine) -> None:
    engine.set_setting("format_version", str(FIRST_CONNECT_FORMAT))
    mine, other = Gate(engine, Keys(), "loc"), Gate(engine, Keys(), "loc")
    mine.enable()
    assert other.available()
    other.disable()  # reaches the clients that look afterwards...
    assert not Gate(engine, Keys(), "loc").available()
    assert mine.available()  # ...not one that has seen it enabled
    mine.require()
