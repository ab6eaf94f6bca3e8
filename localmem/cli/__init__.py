"""The ``localmem`` command line."""

from localmem.cli.main import main

__all__ = ["main"]
