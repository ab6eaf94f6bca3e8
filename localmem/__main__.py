"""``python -m localmem``: the same command line as the ``localmem`` console script."""

from localmem.cli import run

run()
