"""Reports and pictures: the HTML run report, plots, model summary and diagram, runs index, comparison.

Importing this package is cheap: matplotlib, jinja2 and torch load only when a picture or page is made.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "build_report",
    "plot_history",
    "summary",
    "plot_model",
    "compare_runs",
    "list_runs",
    "register_section",
    "register_example_inputs",
    "Section",
    "Table",
    "Plot",
    "RunFolder",
    "read_run_folder",
]

_WHERE = {
    "build_report": "dlpipe.reports.report",
    "plot_history": "dlpipe.reports.compare",
    "summary": "dlpipe.reports.summary",
    "plot_model": "dlpipe.reports.summary",
    "register_example_inputs": "dlpipe.reports.summary",
    "compare_runs": "dlpipe.reports.compare",
    "list_runs": "dlpipe.reports.compare",
    "register_section": "dlpipe.reports.sections",
    "Section": "dlpipe.reports.sections",
    "Table": "dlpipe.reports.sections",
    "Plot": "dlpipe.reports.plots",
    "RunFolder": "dlpipe.reports.folder",
    "read_run_folder": "dlpipe.reports.folder",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dlpipe.reports' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
