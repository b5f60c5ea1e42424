"""Option types shared by many commands, so each is spelled the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
StoreOpt = Annotated[
    str, typer.Option("--store", "-s", metavar="NAME", help="Name of the data store.")
]
ParentsOpt = Annotated[
    bool, typer.Option("--parents", "-p", help="Create missing parent directories.")
]
NoVerifyOpt = Annotated[
    bool,
    typer.Option("--no-verify", help="Do not check that the bucket answers these credentials."),
]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="Only objects under this key prefix.")]
NoStripPrefixOpt = Annotated[
    bool, typer.Option("--no-strip-prefix", help="Keep the prefix in the paths.")
]
