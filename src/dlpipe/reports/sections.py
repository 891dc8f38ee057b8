"""Sections of a report and the hook other input kinds use to add their own.

A section is a title and an ordered list of items: plots, tables, paragraphs and notes (a note says
what is missing or skipped, and why). Another kind of run (images, series, RL...) adds sections with

    register_section("image", "dlpipe.reports.images:sections")

where ``sections(run: RunFolder) -> list[Section]`` reads what it needs from the run folder. The
function is imported only when a report for that kind is built; a failing provider becomes a note in
the page, never a crash. Use ``"*"`` as the kind to add sections to every report.

The table is :data:`dlpipe.core.extensions.REPORT_SECTIONS`: this module registers the providers in
``dlpipe.reports``, and ``dlpipe._builtins`` those of kinds whose code lives higher up (RL runs:
``dlpipe.rl.report``), so that ``dlpipe report`` on such a run works without anything importing them first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlpipe.core.extensions import REPLACED_SECTIONS, REPORT_SECTIONS, load_target
from dlpipe.reports.plots import Plot

if TYPE_CHECKING:
    from dlpipe.reports.folder import RunFolder

__all__ = [
    "Section",
    "Table",
    "TokenText",
    "register_section",
    "extra_sections",
    "replaced_sections",
]


@dataclass
class Table:
    """A table of plain values (escaped when rendered); ``highlight`` marks one row in bold."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    highlight: int | None = None
    collapsed: bool = False


@dataclass
class TokenText:
    """A document shown token by token, each on its own background colour (token attributions).

    ``tokens``: ``(text, css_colour)`` pairs; the text is escaped when rendered, the colour is one the
    caller computed (``rgba(...)``), never user input."""

    caption: str
    tokens: list[tuple[str, str]]


@dataclass
class Section:
    id: str
    title: str
    items: list[tuple[str, Any]] = field(default_factory=list)

    def plot(self, plot: Plot) -> Section:
        self.items.append(("plot", plot))
        return self

    def table(self, table: Table) -> Section:
        self.items.append(("table", table))
        return self

    def text(self, text: str) -> Section:
        self.items.append(("text", text))
        return self

    def note(self, text: str) -> Section:
        """Something missing or skipped, said in one sentence (shown in a muted box)."""
        self.items.append(("note", text))
        return self

    def tokens(self, document: TokenText) -> Section:
        """A document with a colour behind each token (escaped text, our own colours)."""
        self.items.append(("tokens", document))
        return self

    def code(self, text: str, folded: str | None = None) -> Section:
        """Preformatted text; with ``folded`` it starts closed under that one-line summary."""
        self.items.append(("code", (text, folded)))
        return self

    @property
    def plots(self) -> list[Plot]:
        return [p for k, p in self.items if k == "plot"]


SectionProvider = Callable[["RunFolder"], "Iterable[Section] | Section | None"]
_PROVIDERS = REPORT_SECTIONS  # run kind -> providers
# run kind -> the standard sections (by id) that its own sections stand in for (an RL run has no test
# split, table schema or epochs, so its provider draws the evaluation, environment and training curves)
_REPLACED = REPLACED_SECTIONS


def register_section(
    kind: str, provider: str | SectionProvider, *, replaces: Iterable[str] = ()
) -> None:
    """Add sections to reports of runs of ``kind`` (``"*"``: every run); ``provider`` is a function or ``"module:function"``.

    ``replaces`` names standard sections (``"verdict"``, ``"data"``, ``"model"``, ``"training"``,
    ``"evaluation"``, ``"environment"``) that the provider's sections stand in for in reports of ``kind``.
    """
    entries = _PROVIDERS.setdefault(kind, [])
    if provider not in entries:
        entries.append(provider)
    if replaces:
        _REPLACED.setdefault(kind, set()).update(replaces)


# By name, imported only when a report of their kind is built.
register_section("image", "dlpipe.reports.images:sections")
register_section("text", "dlpipe.reports.text:sections")
register_section("image", "dlpipe.reports.trust:sections")  # calibration
register_section("sequence", "dlpipe.reports.trust:sections")  # calibration
register_section("table", "dlpipe.reports.trust:sections")  # explanations, calibration, intervals
# attributions of a few test inputs (saliency overlays, steps, tokens): one section function per kind
register_section("image", "dlpipe.reports.attributions:image_section")
register_section("sequence", "dlpipe.reports.attributions:sequence_section")
register_section("text", "dlpipe.reports.attributions:text_section")
register_section(
    "*", "dlpipe.reports.forecast:sections"
)  # draws only when metrics.json has a test_forecast
register_section(
    "*", "dlpipe.reports.generative:sections"
)  # only for reconstruction / generate runs


def replaced_sections(kind: str) -> frozenset[str]:
    """The ids of the standard sections that reports of runs of ``kind`` leave out (their own sections replace them)."""
    return frozenset(_REPLACED.get(kind, ()))


def extra_sections(run: RunFolder) -> list[Section]:
    out: list[Section] = []
    for entry in _PROVIDERS.get(run.kind, []) + _PROVIDERS.get("*", []):
        label = entry if isinstance(entry, str) else getattr(entry, "__qualname__", repr(entry))
        try:
            fn = _load(entry)
            result = fn(run)
        except Exception as exc:  # noqa: BLE001 - one broken provider must not lose the whole report
            out.append(
                Section(f"extra-{len(out)}", f"Section from {label}").note(
                    f"this section could not be built ({type(exc).__name__}: {str(exc)[:200]})."
                )
            )
            continue
        if result is None:
            continue
        out.extend([result] if isinstance(result, Section) else list(result))
    return out


def _load(entry: object) -> SectionProvider:
    fn: SectionProvider = load_target(entry)
    return fn
