"""``--help`` that reads like a manual page: ``NAME``, ``MB``, ``PATH``, flags without a value.

Typer shows each parameter's Python type in help (``<str>``, ``<bool>``,
``<int range> [x>=0]``), so a flag looks as if it took a value. The root group
here makes every command below it show instead: for an option, the metavar it
declares or its long name in capitals (``--bucket BUCKET``), nothing for a
flag, a range in words (``[1 to 10080]``); for an argument, its metavar or
name in capitals, in brackets when it may be left out. Only the display
changes: parsing and validation stay Typer's.

Typer builds its parameter and sub-command objects itself, with no hook to
choose their classes, so the group gives them these subclasses (which add no
state, only display methods) as it hands them out.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def _bound(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_words(low: float | None, high: float | None) -> str | None:
    """``1 to 10080``, ``0 or more``, ``at most 9``; ``None`` without bounds."""
    if low is None and high is None:
        return None
    if high is None:
        return f"{_bound(low)} or more"
    if low is None:
        return f"at most {_bound(high)}"
    return f"{_bound(low)} to {_bound(high)}"


class HumanOption(TyperOption):
    """An option whose help shows a metavar, not a Python type; flags show none."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar:
            return self.metavar
        longest = max(self.opts, key=len)
        return longest.lstrip("-").replace("-", "_").upper()

    def _get_number_range_help_str(self) -> str | None:
        return _range_words(self.min, self.max)


class HumanArgument(TyperArgument):
    """An argument shown as ``NAME`` (``[NAME]`` when optional), with no type."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        if self.metavar:
            return self.metavar
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def _get_number_range_help_str(self) -> str | None:
        return _range_words(self.min, self.max)


def _humanized(params: list[Any]) -> list[Any]:
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = HumanOption
        elif type(param) is TyperArgument:
            param.__class__ = HumanArgument
    return params


class HumanCommand(TyperCommand):
    """A command whose parameters show human help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _humanized(super().get_params(ctx))


class HumanGroup(TyperGroup):
    """A group whose parameters, sub-commands and sub-groups all show human help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _humanized(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if type(command) is TyperCommand:
            command.__class__ = HumanCommand
        elif type(command) is TyperGroup:
            command.__class__ = HumanGroup
        return command
