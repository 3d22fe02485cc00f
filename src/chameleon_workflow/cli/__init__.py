"""The ``chameleon`` command line."""

from chameleon_workflow.cli.app import app, main

__all__ = ["app", "main"]
