"""``History``: one dict of flat floats per epoch, plus where early stopping ended."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

__all__ = ["History"]


class History:
    """The per-epoch logs of a fit.

    Example:
        >>> h = History(); h.append({"epoch": 1, "loss": 0.5})
        >>> h.history["loss"]
        [0.5]
    """

    def __init__(self, records: list[dict[str, float]] | None = None) -> None:
        self.records: list[dict[str, float]] = list(records or [])
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def append(self, logs: dict[str, float]) -> None:
        self.records.append(dict(logs))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras' shape: metric name -> list of per-epoch values."""
        keys: list[str] = []
        for r in self.records:
            keys.extend(k for k in r if k not in keys)
        return {k: [r.get(k, float("nan")) for r in self.records] for k in keys}

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.records)

    def to_csv(self, path: str | Path) -> None:
        keys = list(self.history)
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        with open(path, newline="") as fh:
            return cls(
                [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]
            )

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History(epochs={len(self)}, last={ {k: round(v, 4) for k, v in last.items()} })"
