"""The metadata engine: one contract, a transaction kernel, shared operations, dialects."""

from filespace.meta.engine import Engine
from filespace.meta.registry import is_engine_url, open_engine
from filespace.meta.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Engine", "is_engine_url", "open_engine"]
