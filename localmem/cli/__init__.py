"""The ``localmem`` command line."""

from localmem.cli.main import main, run

__all__ = ["main", "run"]
