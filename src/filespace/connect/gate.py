"""Whether Connect may be used on a filespace, and turning it on and off.

Connect needs format 9 or newer and must have been enabled; every Connect
operation but ``are_data_stores_available``, ``enable`` and ``disable`` asks
the gate first and gets ``ConnectUnavailableError`` saying how to fix it.
Once a client has seen Connect enabled it keeps that answer (the read path
asks on every open): turning Connect off reaches the clients that open the
filespace afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from filespace.errors import ConnectUnavailableError
from filespace.meta.errors import engine_errors

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer

FIRST_CONNECT_FORMAT = 9


class Gate:
    """The availability check of one filespace's Connect."""

    def __init__(self, engine: Engine, sealer: Callable[[], Sealer], location: str) -> None:
        self._engine = engine
        self._sealer = sealer
        self._location = location
        self._enabled_seen = False

    def _format_version(self) -> int:
        return int(self._engine.settings().get("format_version", "0"))

    def available(self) -> bool:
        """Whether the format supports external files (9+) and Connect is enabled."""
        if self._enabled_seen:
            return True
        settings = self._engine.settings()
        available = (
            int(settings.get("format_version", "0")) >= FIRST_CONNECT_FORMAT
            and settings.get("connect_enabled") == "1"
        )
        self._enabled_seen = available  # enabling is one-way, so "yes" can be kept
        return available

    def require(self) -> None:
        """Raise ``ConnectUnavailableError`` unless Connect may be used, saying how to fix it."""
        if self.available():
            return
        version = self._format_version()
        if version < FIRST_CONNECT_FORMAT:
            raise ConnectUnavailableError(
                f"Connect needs filespace format {FIRST_CONNECT_FORMAT} or newer; this one is "
                f"format {version}: upgrade it with filespace.upgrade({self._location!r}) "
                "or `filespace upgrade LOCATION`"
            )
        raise ConnectUnavailableError(
            "Connect is not enabled on this filespace: call fsp.connect.enable() "
            "or run `filespace connect enable`"
        )

    def enable(self) -> None:
        """Turn Connect on (needs the filespace key); idempotent."""
        if self._format_version() < FIRST_CONNECT_FORMAT:
            self.require()
        self._sealer()  # proves the key is at hand before secrets can be stored
        self._engine.set_setting("connect_enabled", "1")
        self._enabled_seen = True

    def disable(self) -> None:
        """Turn Connect off unless files are linked (``ConnectInUseError``); idempotent."""
        if self._format_version() < FIRST_CONNECT_FORMAT:
            return  # an older format has no Connect to turn off
        with engine_errors():
            self._engine.disable_connect()
        self._enabled_seen = False
