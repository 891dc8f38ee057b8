"""Forecast plots' date axis: a long monthly series gets a few readable ticks, not one per row (issue #18)."""

import numpy as np
import pytest

from dlpipe.reports.forecast import _date_axis, _times
from dlpipe.reports.plots import new_figure


@pytest.mark.parametrize("rows", [144, 18, 600])
def test_date_ticks_are_few_and_do_not_overlap(rows):
    # metrics.json stores times as ISO strings; drawn as text they were one overlapping label per row
    times = [f"{1949 + m // 12}-{m % 12 + 1:02d}-01T00:00:00" for m in range(rows)]
    x = _times(times)
    assert np.issubdtype(x.dtype, np.datetime64)
    fig = new_figure(9.0, 3.4)
    ax = fig.subplots()
    ax.plot(x, np.arange(rows))
    _date_axis(ax, x)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    shown = [
        t
        for t, loc in zip(ax.get_xticklabels(), ax.get_xticks())
        if lo <= loc <= hi and t.get_text()
    ]
    assert 2 <= len(shown) <= 9
    boxes = sorted((t.get_window_extent() for t in shown), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in shown]
