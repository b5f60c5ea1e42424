"""The ``filespace`` command (filled in by the CLI module)."""


def main() -> None:
    """Entry point of the ``filespace`` console script."""
    from filespace.cli.app import run

    run()
