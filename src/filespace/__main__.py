"""``python -m filespace``: the ``filespace`` command."""

from filespace.cli import main

main()
