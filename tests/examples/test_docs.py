"""Every ```python block in docs/*.md and README.md runs, in order, per page, in a fresh folder."""

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [p for p in PAGES if BLOCK.search(p.read_text())], ids=lambda p: p.name
)
def test_page_examples_run(page):
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # the examples show warnings to users; here they must just run
        for block in BLOCK.findall(page.read_text()):
            exec(compile(block, str(page), "exec"), namespace)
