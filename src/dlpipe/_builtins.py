"""The built-in registrations whose code lives above the layer that looks them up.

Loading a bundle, reading raw input into a bundle and building a report look a kind up in the tables
of :mod:`dlpipe.core.extensions`; for the kinds below, the code sits in a higher layer (a forecasting
bundle's adapter scores with the baselines in ``dlpipe.evaluation``; ensembles and RL agents load
themselves from ``dlpipe.ensembles`` and ``dlpipe.rl``). The root package sits above every layer and is
imported before any of them, so these names point down from here and every bundle and run folder
loads without its caller importing the upper package first. Each is ``"module:attr"``, imported only
when that kind is used: this module imports nothing but the tables (no numpy, no torch).
"""

from __future__ import annotations

from dlpipe.core.extensions import (
    BUNDLE_LOADERS,
    BUNDLE_MODELS,
    INPUT_ADAPTERS,
    REPLACED_SECTIONS,
    REPORT_SECTIONS,
)

# forecasting bundles: the adapter's evaluate_bundle scores against the naive baselines
INPUT_ADAPTERS["series"] = "dlpipe.evaluation.forecast_baselines:ForecastAdapter"

# bundles that load themselves: an ensemble holds member bundles, an RL agent a policy network or a Q-table
BUNDLE_LOADERS["ensemble"] = "dlpipe.ensembles.ensemble:load_ensemble"
BUNDLE_LOADERS["rl"] = "dlpipe.rl.agent:load_rl_bundle"

# a model saved by the Keras-style facade: its network is rebuilt by dlpipe.keras' layers from the JSON
# spec; one with several inputs or outputs (no task to feed it with) is refused with a sentence
BUNDLE_MODELS["keras"] = "dlpipe.keras._bundle:build_network"
BUNDLE_LOADERS["keras"] = "dlpipe.keras._bundle:load_graph_bundle"

# an RL run's report: the return curve, environment and settings in place of the sections of a run
# with a test split, a table and epochs
REPORT_SECTIONS.setdefault("rl", []).append("dlpipe.rl.report:sections")
REPLACED_SECTIONS.setdefault("rl", set()).update({"verdict", "data", "training", "evaluation"})
