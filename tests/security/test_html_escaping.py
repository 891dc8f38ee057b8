"""Hostile names through every HTML page dlpipe writes offline (issue #15, item 3: stored XSS).

One tiny table whose column names, category values, target name and class labels are HTML and
script, fed through the real commands: a ``dl.train`` run report and a ``dlpipe train`` one,
``dlpipe compare``, ``dlpipe drift -o``, ``dlpipe tune`` (its report) and ``dlpipe rl train`` (its
report carries the user's folder name). Each page must show every name as text and contain no
element, attribute or script of the payloads: checked in the raw HTML (fast) and in real headless
Chromium with the page's Content-Security-Policy bypassed, so an injected script would run if there
were one. The served page (``/``, ``/docs``) is covered in tests/serving.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import markupsafe
import numpy as np
import pandas as pd
import pytest

from tests.reports.chromium import Chromium, chromium_path

SRC = Path(__file__).resolve().parents[2] / "src" / "dlpipe"

COLUMN_SCRIPT = "x</script><script>alert(document.cookie)</script>"
COLUMN_ATTR = '"><img src=x onerror=alert(2)>'
CATEGORY = "<b onmouseover=alert(3)>"
TARGET = "</title><script>alert(1)</script>"
LABELS = ("<i>yes</i>", "<script>alert(4)</script>")
FOLDER = "'\"><svg onload=alert(5)>"  # a run folder's name (no '/': it is one path part)
DATA_FILE = "<svg onload=alert(6)>.csv"
STUDY = "</title><svg onload=alert(7)>"
RL_FOLDER = "<svg onload=alert(8)>"
FIELD = "'\"><script>alert(9)</script>"  # every string field of a run folder someone handed over
PICTURE = '"><svg onload=alert(10)>'  # a PNG's name in its plots/ (shown by name in the report)
# what an injected element or handler would look like in the raw page (the pages have no script at all)
RAW_MARKERS = ("<script", "<img src=x", "<b onmouseover", "<svg", "<i>", "</title><")
PAGES = (
    "train report",
    "dl.train report",
    "compare",
    "drift",
    "tuning report",
    "rl report",
    "handed-over run",
)


def _table(n: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame(
        {
            COLUMN_SCRIPT: x[:, 0],
            COLUMN_ATTR: x[:, 1],
            "colour": rng.choice([CATEGORY, "plain"], size=n),
            TARGET: np.where(x[:, 0] + x[:, 1] > 0, LABELS[0], LABELS[1]),
        }
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Every offline page, built once from the hostile table: name -> (page, the hostile strings it must show as text)."""
    import dlpipe as dl
    from dlpipe.cli.app import main

    root = tmp_path_factory.mktemp("hostile")
    frame = _table()
    data = root / DATA_FILE
    frame.to_csv(data, index=False)
    cli = root / "cli-run"
    assert main(["train", str(data), "-t", TARGET, "--epochs", "1", "-o", str(cli), "--quiet"]) == 0
    api = root / FOLDER
    dl.train(frame, TARGET, epochs=1, out=api, progress="quiet", drop=[COLUMN_ATTR])
    assert main(["compare", str(cli), str(api), "-o", str(root / "compare.html")]) == 0
    shifted = frame.assign(**{COLUMN_SCRIPT: frame[COLUMN_SCRIPT] + 3})
    shifted.to_csv(root / "new.csv", index=False)
    assert (
        main(["drift", str(cli / "bundle"), str(root / "new.csv"), "-o", str(root / "drift.html")])
        == 0
    )
    assert (
        main(
            [
                "tune",
                str(data),
                "-t",
                TARGET,
                "--trials",
                "2",
                "--epochs",
                "1",
                "--pruner",
                "none",
                "--no-retrain",
                "-q",
                "--study-name",
                STUDY,
                "-o",
                str(root / "tune"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "rl",
                "train",
                "FrozenLake-v1",
                "--algo",
                "qlearning",
                "--env-option",
                "is_slippery=false",
                "--steps",
                "300",
                "--eval-episodes",
                "2",
                "-q",
                "-o",
                str(root / RL_FOLDER),
            ]
        )
        == 0
    )
    handed = _handed_over_run(
        root / "handed-over", (cli / "plots" / "confusion_matrix.png").read_bytes()
    )
    assert main(["report", str(handed)]) == 0
    names = (COLUMN_SCRIPT, COLUMN_ATTR, TARGET, *LABELS)
    return {
        "train report": (cli / "report.html", (*names, DATA_FILE)),
        "dl.train report": (api / "report.html", (*names, FOLDER)),
        "compare": (
            root / "compare.html",
            (FOLDER, COLUMN_ATTR),
        ),  # the run's name and the setting that differs (data.drop)
        "drift": (root / "drift.html", (COLUMN_SCRIPT, COLUMN_ATTR)),
        "tuning report": (root / "tune" / "report.html", (STUDY,)),
        "rl report": (root / RL_FOLDER / "report.html", (RL_FOLDER,)),
        "handed-over run": (handed / "report.html", (FIELD, PICTURE)),
    }


def _handed_over_run(folder: Path, png: bytes) -> Path:
    """A run folder whose every text field was edited to hold markup (`dlpipe report` rebuilds its page from them)."""
    folder.mkdir()
    test = {
        "model": {
            "accuracy": 0.5,
            "per_class": {FIELD: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}},
        },
        "baselines": {FIELD: {"accuracy": 0.4}},
        "verdict": FIELD,
        "primary_metric": FIELD,
        "rows": FIELD,
    }
    metrics = {
        "task": FIELD,
        "dataset": FIELD,
        "target": FIELD,
        "rows": {FIELD: 3},
        "environment": {FIELD: FIELD},
        "command": FIELD,
        "data_source": FIELD,
        "epochs_run": FIELD,
        "best_epoch": FIELD,
        "test": test,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    (folder / "config.yaml").write_text(
        json.dumps({"data": {"target": FIELD}, "train": {"optimizer": FIELD}, "seed": FIELD}),
        encoding="utf-8",
    )
    (folder / "history.csv").write_text(
        f"epoch,loss,{json.dumps(FIELD)}\n1,0.5,0.1\n2,0.4,0.2\n", encoding="utf-8"
    )
    (folder / "plots").mkdir()
    (folder / "plots" / f"{PICTURE}.png").write_bytes(png)
    return folder


def _escaped_somehow(text: str, page: str) -> bool:
    """``text`` is in the page as character data (Jinja's or the stdlib's escaping)."""
    return any(
        form in page
        for form in (
            str(markupsafe.escape(text)),
            html.escape(text),
            html.escape(text, quote=False),
        )
    )


def _assert_no_raw_payload(page: str, must_show: tuple[str, ...]) -> None:
    lowered = page.lower()
    found = [m for m in RAW_MARKERS if m in lowered]
    assert found == [], f"unescaped markup {found} in the page"
    assert [s for s in must_show if not _escaped_somehow(s, page)] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_offline_page_escapes_hostile_names(pages, name):
    """No browser: the raw HTML holds the payloads only as escaped text, never as markup."""
    path, must_show = pages[name]
    page = path.read_text(encoding="utf-8")
    for payload in (
        COLUMN_SCRIPT,
        COLUMN_ATTR,
        CATEGORY,
        TARGET,
        *LABELS,
        FOLDER,
        DATA_FILE,
        STUDY,
        RL_FOLDER,
        FIELD,
        PICTURE,
    ):
        assert payload not in page, f"{payload!r} is in the page unescaped"
    _assert_no_raw_payload(page, must_show)


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_offline_page_forbids_scripts(pages, name):
    """Defence in depth: each page's Content-Security-Policy allows no script and no request (only inline PNGs and styles)."""
    page = pages[name][0].read_text(encoding="utf-8")
    assert (
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        in page
    )


# ------------------------------------------------------------------------------------- Chromium
# Runs before any script of the page: records every dialog a payload would open.
_TRAP = """window.__xss = [];
for (const f of ['alert', 'confirm', 'prompt', 'print']) { window[f] = (...a) => { window.__xss.push(f + ':' + a.join(',')); }; }"""
_PROBE = """JSON.stringify({
  xss: window.__xss,
  scripts: document.scripts.length,
  handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
  tags: [...new Set([...document.querySelectorAll('*')].map(e => e.tagName.toLowerCase()))],
  foreignImages: [...document.images].map(i => i.getAttribute('src') || '').filter(s => !s.startsWith('data:image/png;base64,')),
  text: [document.title, document.documentElement.textContent, ...[...document.images].map(i => i.alt)].join('\\n'),
  title: document.title,
})"""
# every element the report template and the drift page use; an injected one (script, img src=x, svg, b, i) is not here
_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "nav",
    "main",
    "footer",
    "section",
    "div",
    "h1",
    "h2",
    "p",
    "a",
    "strong",
    "table",
    "caption",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "figure",
    "figcaption",
    "img",
    "details",
    "summary",
    "pre",
}


def _open(browser: Chromium, page: Path) -> dict[str, Any]:
    cdp = browser.cdp
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    start = len(cdp.events)
    cdp.send("Page.enable", session=session)
    cdp.send(
        "Page.setBypassCSP", {"enabled": True}, session=session
    )  # an injected script would run: the escaping is what stops it
    cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": _TRAP}, session=session)
    cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    cdp.wait_event("Page.loadEventFired", session=session, since=start, timeout=60)
    answer = cdp.send(
        "Runtime.evaluate", {"expression": _PROBE, "returnByValue": True}, session=session
    )
    assert "value" in answer["result"], f"the probe failed in {page.name}: {answer}"
    result = json.loads(answer["result"]["value"])
    result["dialogs"] = [
        e for e in cdp.events[start:] if e.get("method") == "Page.javascriptDialogOpening"
    ]
    cdp.send("Target.closeTarget", {"targetId": target})
    return result


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        pytest.skip(
            "chromium is not installed; `make services` (scripts/test-services.sh) installs it"
        )
    with Chromium() as b:
        yield b


@pytest.mark.service
@pytest.mark.parametrize("name", PAGES)
def test_no_injected_script_runs_in_chromium(pages, browser, name):
    path, must_show = pages[name]
    seen = _open(browser, path)
    assert seen["xss"] == [] and seen["dialogs"] == [], f"a payload ran: {seen['xss']}"
    assert seen["scripts"] == 0 and seen["handlers"] == [], (
        f"injected {seen['handlers']} / {seen['scripts']} scripts"
    )
    assert set(seen["tags"]) <= _TAGS, f"injected elements {set(seen['tags']) - _TAGS}"
    assert seen["foreignImages"] == [], f"injected images {seen['foreignImages']}"
    missing = [s for s in must_show if s not in seen["text"]]
    assert missing == [], f"the hostile names {missing} are not shown as text"
    folder = {"dl.train report": FOLDER, "rl report": RL_FOLDER}.get(name)
    if folder is not None:  # a name put in <title> stays inside it
        assert seen["title"].endswith(folder)


# ------------------------------------------------------------------------------------- no training
def test_render_page_escapes_every_field():
    from dlpipe.reports.plots import Plot
    from dlpipe.reports.report import render_page
    from dlpipe.reports.sections import Section, Table

    section = (
        Section("s", TARGET).text(COLUMN_SCRIPT).note(CATEGORY).code(LABELS[1], folded=COLUMN_ATTR)
    )
    section.table(
        Table(
            [COLUMN_ATTR, "v"],
            [[CATEGORY, 1.0], [LABELS[0], LABELS[1]]],
            caption=TARGET,
            collapsed=True,
        )
    )
    section.plot(Plot("p", COLUMN_ATTR, b"\x89PNG", note=LABELS[0])).plot(
        Plot("q", TARGET, None, note=CATEGORY)
    )
    page = render_page(
        title=TARGET,
        heading=COLUMN_SCRIPT,
        subtitle=COLUMN_ATTR,
        sections=[section],
        verdict=CATEGORY,
        banner=[LABELS[1]],
        footer=FOLDER,
    )
    _assert_no_raw_payload(page, (TARGET, COLUMN_SCRIPT, COLUMN_ATTR, CATEGORY, *LABELS, FOLDER))
    assert (
        '<img src="data:image/png;base64,iVBORw==" alt="&#34;&gt;&lt;img src=x onerror=alert(2)&gt;">'
        in page
    )


def test_no_template_or_page_writer_marks_data_safe():
    """Escaping is off only where code says so: no `|safe`, `Markup(` or `autoescape false` in the offline page writers."""
    files = [
        *(SRC / "reports").rglob("*.py"),
        *(SRC / "reports" / "templates").glob("*.html"),
        SRC / "monitoring" / "drift.py",
        SRC / "tuning" / "report.py",
        SRC / "rl" / "report.py",
    ]
    offending = [
        f"{f.name}: {m}"
        for f in files
        for m in re.findall(
            r"\|\s*safe\b|Markup\(|autoescape\s+false|autoescape=False",
            f.read_text(encoding="utf-8"),
        )
    ]
    assert offending == []


def test_drift_page_escapes_every_field_and_forbids_scripts(tmp_path):
    from dlpipe.monitoring import DriftReport, FeatureDrift

    feature = FeatureDrift(
        COLUMN_ATTR,
        CATEGORY,
        TARGET,
        0.5,
        0.01,
        0.3,
        True,
        10,
        0.0,
        0.0,
        bins=[LABELS[0], LABELS[1]],
        reference=[0.5, 0.5],
        new=[0.2, 0.8],
    )
    report = DriftReport([feature], level=0.05, rows=10, skipped=[COLUMN_SCRIPT])
    page = report.to_html(tmp_path / "drift.html")
    assert (tmp_path / "drift.html").read_text(encoding="utf-8") == page
    _assert_no_raw_payload(page, (COLUMN_ATTR, CATEGORY, TARGET, COLUMN_SCRIPT))
    assert f'alt="distribution of {html.escape(COLUMN_ATTR)}"' in page
    assert (
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        in page
    )


# ------------------------------------------------------------------------------------- names TeX would parse
MATH = r"$\undefinedcmd{$"  # two `$`: matplotlib parses it as TeX math, and fails


def test_names_with_dollar_signs_are_drawn_literally(tmp_path):
    """A report and a drift page still come out when names, labels and categories hold `$...$` (drawn as typed)."""
    import dlpipe as dl
    from dlpipe.cli.app import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 2))
    frame = pd.DataFrame(
        {
            MATH: x[:, 0],
            "b": x[:, 1],
            "c": rng.choice([r"$\bad$", "$ok$"], size=48),
            "y": np.where(x[:, 0] > 0, r"$\frac{$", "$x^$"),
        }
    )
    run = dl.train(
        frame, "y", epochs=1, out=tmp_path / "run", progress="quiet"
    )  # filterwarnings=error: no "report could not be built"
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert html.escape(MATH, quote=False) in page
    drawn = {p.name for p in (run.path / "plots").iterdir()}
    assert {
        "confusion_matrix.png",
        "class_balance.png",
        "first_layer_weights.png",
    } <= drawn  # labels and names as tick labels
    frame.to_csv(tmp_path / "new.csv", index=False)
    assert main(["drift", str(run.path / "bundle"), "new.csv", "-o", "drift.html"]) == 0
    assert (tmp_path / "drift.html").read_text(encoding="utf-8").count("<img") == 3
