"""``--keep-columns`` for ``dlpipe predict`` and ``dlpipe anomalies``: the input's columns (ids,
inputs, anything else the file holds) beside each row's answer, in the input's order."""

from __future__ import annotations

from typing import Any

from dlpipe.core.errors import InvalidInputError, format_names


def check_keepable(kind: str) -> None:
    """``--keep-columns`` is for table bundles: other kinds' answers already name their case."""
    if kind != "table":
        raise InvalidInputError(
            f"`--keep-columns` keeps a table's columns beside its predictions, but this is a {kind} "
            "bundle, whose predictions already name their case (path, time or row); run without it."
        )


def keep_input_columns(answers: Any, frame: Any, *, command: str, kind: str) -> Any:
    """``frame``'s columns followed by ``answers``' (one answer per input row), or one sentence."""
    import pandas as pd

    if len(answers) != len(frame):
        raise InvalidInputError(
            f"`--keep-columns` puts each input row beside its answer, but this {kind} bundle gave "
            f"{len(answers)} answers for {len(frame)} input rows; run `dlpipe {command}` without it."
        )
    clash = [str(c) for c in answers.columns if c in set(frame.columns)]
    if clash:
        raise InvalidInputError(
            f"`--keep-columns` would repeat the columns {format_names(clash)}, which the input already "
            f"holds (an earlier output?); rename or drop them in the input, or run without `--keep-columns`."
        )
    return pd.concat([frame.reset_index(drop=True), answers.reset_index(drop=True)], axis=1)
