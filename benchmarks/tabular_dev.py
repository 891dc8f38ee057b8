"""Try a change of the default table model on the development tables only (issue #17).

Runs ``tabular_suite.main`` on development tables (the suite's tables are refused, so a choice never
looks at them) with one variant of the default model set for the run:

- ``defaults``: keys of ``dlpipe.pipeline._fit.TABLE_MODEL_DEFAULTS`` (``numeric_input``, ``bins``,
  ``hidden``, ``refit_below``);
- ``members`` / ``skip`` / ``bins``: per task, ``[below 2,000 training rows, from 2,000]``, replacing
  the rules of ``default_members`` / ``default_skip`` / ``default_bins`` (e.g.
  ``{"members": {"regression": [8, 8]}}``);
- ``options``: extra ``dl.train`` arguments (e.g. ``{"model": {"hidden": [256, 256]}}``).

The in-run tree baselines are switched off (they do not change the model; they cost time); the
classic models are fitted by the suite unless ``--no-classic``.

Run: ``nice -n 5 .venv/bin/python benchmarks/tabular_dev.py --tables flights,randhie
--variant '{"members": {"regression": [8, 8]}}' --no-classic``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tabular_suite  # noqa: E402


def apply_variant(variant: dict[str, Any]) -> None:
    """Set the variant's rules in dlpipe's table recipe for this process."""
    from dlpipe.models import mlp
    from dlpipe.pipeline import _fit, _table_eval

    _fit.TABLE_MODEL_DEFAULTS.update(variant.get("defaults", {}))
    members, skip, bins = (variant.get(k, {}) for k in ("members", "skip", "bins"))

    def default_members(n_rows: int, task: str = "binary") -> int:
        if task in members:
            return int(members[task][0 if n_rows < 2_000 else 1])
        return mlp.default_members(n_rows, task)

    def default_skip(n_rows: int, task: str = "binary") -> bool:
        if task in skip:
            return bool(skip[task][0 if n_rows < 2_000 else 1])
        return mlp.default_skip(n_rows, task)

    def default_bins(n_rows: int, task: str = "binary", n_numeric: int = 0) -> int:
        if task in bins:
            return int(bins[task][0 if n_rows < 2_000 else 1])
        return mlp.default_bins(n_rows, task, n_numeric)

    _fit.default_members = default_members
    _fit.default_bins = default_bins
    _fit.default_skip = default_skip
    _table_eval.fit_tree_baselines = lambda *args, **kwargs: {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variant", default="{}")
    ap.add_argument("--no-classic", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    tables = args.tables.split(",")
    suite = [t for t in tables if t in tabular_suite.SUITE]
    if suite:
        ap.error(
            f"{', '.join(suite)} belong to the reported suite; choose on development tables only"
        )
    variant = json.loads(args.variant)
    apply_variant(variant)
    print(f"variant {json.dumps(variant)}", flush=True)
    rest = ["--tables", args.tables, "--seeds", args.seeds]
    rest += ["--options", json.dumps(variant.get("options", {}))]
    rest += ["--no-classic"] if args.no_classic else []
    rest += ["--out", args.out] if args.out else []
    return tabular_suite.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
