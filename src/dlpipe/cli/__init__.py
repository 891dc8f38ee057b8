"""The ``dlpipe`` command: a thin Typer app over the Python API (no logic of its own).

Heavy libraries (torch, pandas, scikit-learn) are imported inside the commands that need them,
so ``dlpipe --help`` answers at once.
"""

from __future__ import annotations

from dlpipe.cli.app import app, main

__all__ = ["app", "main"]


def _entry() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    import sys

    sys.exit(main())
