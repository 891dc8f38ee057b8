"""How long a whole default-style ``text_tfidf`` run takes on 20 Newsgroups (issue #19: under 10 minutes),
without the test file: train, evaluate, baseline, bundle and report on the *training* file's 11,293
documents, with its first 7,528 documents (the test file's size) standing in for the test file. The
accuracy it prints is meaningless (those documents were trained on); the time is the point.

Run: ``nice -n 5 .venv/bin/python benchmarks/text_time_dev.py [lo,hi,weight]`` (e.g. ``3,5,0.5``:
character ``lo``-``hi`` grams at that weight, ``TFIDF_CHARS`` / ``TFIDF_CHAR_WEIGHT``; none: the default).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def main(argv: list[str]) -> int:
    import dlpipe as dl
    from dlpipe.pipeline import _fit_text

    if argv:
        lo, hi, weight = argv[0].split(",")
        _fit_text.TFIDF_CHARS = (int(lo), int(hi))
        _fit_text.TFIDF_CHAR_WEIGHT = float(weight)
    train = pd.read_csv(DATA / "20newsgroups_train.csv.gz")
    work = Path(tempfile.mkdtemp(prefix="text-time-"))
    train.to_csv(work / "train.csv", index=False)
    train.iloc[:7528].to_csv(work / "stand_in_test.csv", index=False)
    print("start", time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg(), flush=True)
    t0 = time.perf_counter()
    run = dl.train(
        str(work / "train.csv"),
        test=str(work / "stand_in_test.csv"),
        model={"family": "text_tfidf"},
        out=work / "run",
        seed=0,
        progress="quiet",
    )
    wall = time.perf_counter() - t0
    t = run.metrics["text"]
    print(
        f"TFIDF_CHARS={_fit_text.TFIDF_CHARS} weight={_fit_text.TFIDF_CHAR_WEIGHT}: whole run {wall:.0f} s, "
        f"training {t['train_seconds']:.0f} s ({t['documents_per_second']} documents/s), "
        f"characters {t['ngrams'].get('characters')}; end",
        time.strftime("%H:%M:%S", time.gmtime()),
        os.getloadavg(),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
