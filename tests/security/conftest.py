"""The fault-injection and hostile-input suite: every case here is marked ``fault``.

Each case ends with one sentence and the documented exit code or HTTP status, and nothing of the
user's changed on disk. See docs/security.md.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/security/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fault)
