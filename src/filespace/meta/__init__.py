"""The metadata engine: one interface, one shared SQL layer, a dialect per database."""

from filespace.meta.engine import Engine
from filespace.meta.registry import is_engine_url, open_engine

__all__ = ["Engine", "is_engine_url", "open_engine"]
