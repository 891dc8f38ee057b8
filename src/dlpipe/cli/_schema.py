"""The column table `dlpipe train` prints: each input column's kind and why (from the bundle's schema)."""

from __future__ import annotations

import sys
from typing import Any

import typer


def print_schema(run: Any) -> None:
    """Print ``column  kind  why`` for every column of a table run (nothing for runs without a schema)."""
    bundle = getattr(run, "bundle", None)
    manifest = getattr(bundle, "manifest", None) or {}
    schema = (manifest.get("preprocessor") or {}).get("schema")
    if not isinstance(schema, dict) or not schema.get("columns"):
        return
    from dlpipe.data.schema import Schema

    rows = [
        (_plain(n, 40), k, _plain(r, 120) or "-") for n, k, r in Schema.from_dict(schema).describe()
    ]
    title = f"columns (target {_plain(repr(schema.get('target')), 40)})"
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for head in ("column", "kind", "why"):
            table.add_column(head)
        for row in rows:
            table.add_row(*(escape(v) for v in row))
        Console().print(table)
        return
    width = max(len("column"), *(len(n) for n, _, _ in rows))
    typer.echo(title)
    typer.echo(f"  {'column':<{width}}  {'kind':<11}  why")
    for name, kind, why in rows:
        typer.echo(f"  {name:<{width}}  {kind:<11}  {why}")
    typer.echo("")


def _plain(text: str, limit: int) -> str:
    """One printable line: control characters (a name may hold escape sequences) shown escaped, cut to fit."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
