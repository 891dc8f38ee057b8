"""The data kinds ``dlpipe train`` knows, in one table: each kind's detector (in ``dlpipe.data``: no
torch), its recipe (imported when first used) and its priority (detectors are tried highest first;
data no detector claims is read as a table).

=========  ========  ======================================================================
kind       priority  recognises
=========  ========  ======================================================================
text       45        folders of <label>/*.txt, tables with a free-text column (classification)
image      40        image folders, CSVs with an image column, .npz/IDX images (classification)
arrays     30        any data when the task is ``reconstruction`` or ``generate``
series     20        a table with ``task: forecast``
sequence   10        .ts files, sequence .npz files, ``task: sequence-classification``
table      0         everything else (CSV, Parquet, DataFrames, bundled data sets)
=========  ========  ======================================================================

A new kind is one module: a :class:`~dlpipe.pipeline.recipe.Recipe` subclass and a
:func:`~dlpipe.pipeline.recipe.register_recipe` call (see docs/architecture.md).
"""

from __future__ import annotations

from dlpipe.data.images import detect_image_dataset
from dlpipe.data.sequences import detect_sequences
from dlpipe.data.series import detect_series
from dlpipe.data.text import detect_text
from dlpipe.pipeline.generative import detect_generative
from dlpipe.pipeline.recipe import register_recipe

register_recipe("text", "dlpipe.pipeline._fit_text:TextRecipe", detect=detect_text, priority=45)
register_recipe(
    "image", "dlpipe.pipeline._fit_images:ImageRecipe", detect=detect_image_dataset, priority=40
)
register_recipe(
    "arrays",
    "dlpipe.pipeline._fit_generative:GenerativeRecipe",
    detect=detect_generative,
    priority=30,
)
register_recipe(
    "series", "dlpipe.pipeline._fit_series:SeriesRecipe", detect=detect_series, priority=20
)
register_recipe(
    "sequence",
    "dlpipe.pipeline._fit_sequences:SequenceRecipe",
    detect=detect_sequences,
    priority=10,
)
register_recipe("table", "dlpipe.pipeline._fit:TableRecipe", priority=0)
