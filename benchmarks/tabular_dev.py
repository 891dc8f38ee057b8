"""Try a change of the default table model on the development tables only (issue #17).

Runs ``tabular_suite.main`` on development tables (the suite's tables are refused, so a choice never
looks at them) with one variant of the default model set for the run:

- ``defaults``: keys of ``dlpipe.pipeline._fit.TABLE_MODEL_DEFAULTS`` (``numeric_input``, ``bins``,
  ``hidden``, ``refit_below``, ``refit_epochs``: the refit's epochs as a multiple of those the first
  fit kept, by task, e.g. ``{"defaults": {"refit_epochs": {"binary": 1, "multiclass": 1,
  "regression": 1}}}`` is the rule before 2026-12-08);
- ``members`` / ``skip`` / ``bins``: per task, ``[below 2,000 training rows, from 2,000]``, replacing
  the rules of ``default_members`` / ``default_skip`` / ``default_bins`` (e.g.
  ``{"members": {"regression": [8, 8]}}``);
- ``options``: extra ``dl.train`` arguments (e.g. ``{"model": {"hidden": [256, 256]}}``);
- ``betas``: Adam's ``[beta1, beta2]`` for every fit of the run (the engine's are (0.9, 0.999));
- ``label_smoothing``: per task, ``[below 2,000 training rows, from 2,000]``, replacing the value of
  ``_fit.default_smoothing`` (still 0 below 200 validation rows); ``{"label_smoothing":
  {"multiclass": [0, 0]}}`` is the default before its label smoothing (2026-12-07);
- ``smoothing``: label smoothing of the classification training loss (the members' outputs only:
  validation loss, early stopping and the temperature still see the plain log loss), e.g. ``0.1``;
- ``steps``: the ``epochs: auto`` rule's step target at every size (``TableRecipe.auto_epochs``: 50
  to 1,000 epochs; ``_fit.default_steps``: 8,000 below 2,000 training rows, else 4,000, the engine's);
  ``{"steps": 4000}`` below 2,000 rows is the default before 2026-12-07's rule;
- ``skip_scale``: the linear path's output times this factor (with Adam, the path's own rate; it
  trains on autograd), e.g. ``{"skip": {"binary": [true, false]}, "skip_scale": 10}``;
- ``input_noise``: Gaussian noise of this standard deviation added to each ensemble member's copy of
  the (scaled) numeric inputs in training mode (a ridge-like penalty; the model trains on autograd),
  e.g. ``{"input_noise": 0.1}``;
- ``average``: ``"logits"`` averages a binary/multiclass ensemble's member logits instead of their
  probabilities (``dlpipe.models.mlp.average_members``), in validation, refit and prediction alike;
- ``adapters``: ``true`` makes each member's input signs a trained parameter (TabM-mini's adapter
  as in the paper, initialised to the random signs; the model trains on autograd);
- ``swa``: the refit's weights become the mean of its last epochs' weights (SWA-style, Izmailov
  et al. 2018; no batch norm to update), e.g. ``{"swa": 10}`` for the last 10 epochs or
  ``{"swa": 0.25}`` for the last quarter (at least 1 epoch); tables without a refit are unchanged.

Generated development tables: ``linear30_0`` ... ``linear30_4`` and ``sparse30_0`` ... ``sparse30_4``
(``tabular_suite.linear_frame`` / ``sparse_frame``: 569 rows, 30 numbers, a linear boundary).

The in-run tree baselines are switched off (they do not change the model; they cost time); the
classic models are fitted by the suite unless ``--no-classic``.

Run: ``nice -n 5 .venv/bin/python benchmarks/tabular_dev.py --tables flights,randhie
--variant '{"members": {"regression": [8, 8]}}' --no-classic``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tabular_suite  # noqa: E402


def apply_variant(variant: dict[str, Any]) -> None:
    """Set the variant's rules in dlpipe's table recipe for this process."""
    from dlpipe.models import mlp
    from dlpipe.pipeline import _fit, _table_eval

    _fit.TABLE_MODEL_DEFAULTS.update(variant.get("defaults", {}))
    members, skip, bins = (variant.get(k, {}) for k in ("members", "skip", "bins"))

    def default_members(n_rows: int, task: str = "binary") -> int:
        if task in members:
            return int(members[task][0 if n_rows < 2_000 else 1])
        return mlp.default_members(n_rows, task)

    def default_skip(n_rows: int, task: str = "binary") -> bool:
        if task in skip:
            return bool(skip[task][0 if n_rows < 2_000 else 1])
        return mlp.default_skip(n_rows, task)

    def default_bins(n_rows: int, task: str = "binary", n_numeric: int = 0) -> int:
        if task in bins:
            return int(bins[task][0 if n_rows < 2_000 else 1])
        return mlp.default_bins(n_rows, task, n_numeric)

    _fit.default_members = default_members
    _fit.default_bins = default_bins
    _fit.default_skip = default_skip
    rule, smoothing_rule = _fit.default_smoothing, variant.get("label_smoothing", {})

    def default_smoothing(n_rows: int, task: str = "binary", n_val: int = 0) -> float:
        from dlpipe.evaluation.calibration import MIN_ROWS

        if task not in smoothing_rule:
            return rule(n_rows, task, n_val)
        return float(smoothing_rule[task][0 if n_rows < 2_000 else 1]) if n_val >= MIN_ROWS else 0.0

    if smoothing_rule:
        _fit.default_smoothing = default_smoothing
    _table_eval.fit_tree_baselines = lambda *args, **kwargs: {}
    if "betas" in variant:
        _set_betas(tuple(float(b) for b in variant["betas"]))
    if variant.get("smoothing"):
        _set_smoothing(float(variant["smoothing"]))
    if "skip_scale" in variant:
        _set_skip_scale(float(variant["skip_scale"]))
    if "steps" in variant:
        _set_steps(int(variant["steps"]))
    if variant.get("input_noise"):
        _set_input_noise(float(variant["input_noise"]))
    if variant.get("average", "probabilities") != "probabilities":
        _set_average(str(variant["average"]))
    if variant.get("swa"):
        _set_swa(float(variant["swa"]))
    if variant.get("adapters"):
        _set_trainable_adapters()


def _set_average(how: str) -> None:
    from dlpipe.models import mlp

    if how != "logits":
        raise ValueError(f"average is {how!r}; expected 'logits' or 'probabilities'")
    mlp.average_members = lambda out, how: out.mean(dim=0)  # (k, B, C) -> (B, C) logits


def _set_swa(last: float) -> None:
    import torch

    from dlpipe.pipeline import _fit

    class _AveragedReplay(_fit._ReplayRates):  # type: ignore[misc]
        """The refit's callback: replays the rates and averages the last epochs' weights."""

        def on_fit_start(self, trainer: Any) -> None:
            super().on_fit_start(trainer)
            kept = len(self.rates)
            n = int(last) if last >= 1 else max(1, round(last * kept))
            self.first, self.total, self.count = kept - min(n, kept) + 1, None, 0

        def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
            super().on_epoch_end(trainer, epoch, logs)
            if epoch >= self.first:
                state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
                if self.total is None:
                    self.total = state
                else:
                    for k, v in state.items():
                        if v.is_floating_point():
                            self.total[k] += v
                self.count += 1

        def on_fit_end(self, trainer: Any, logs: dict[str, float]) -> None:
            if self.total is None:
                return
            with torch.no_grad():
                avg = {
                    k: v / self.count if v.is_floating_point() else v for k, v in self.total.items()
                }
                trainer.model.load_state_dict(avg)

    _fit._ReplayRates = _AveragedReplay


def _set_input_noise(sigma: float) -> None:
    import torch

    from dlpipe.models.mlp import MLP, MemberInput

    def noisy(self: Any, x: Any) -> Any:
        out = x.unsqueeze(0) * self.signs
        return out + sigma * torch.randn_like(out) if self.training else out

    MemberInput.forward = noisy  # type: ignore[method-assign]
    MLP.fast_path_layers = lambda self: None  # type: ignore[method-assign]


def _set_trainable_adapters() -> None:
    import torch

    from dlpipe.models.mlp import MLP, MemberInput

    def init(self: Any, members: int, n_features: int) -> None:
        torch.nn.Module.__init__(self)
        signs = torch.randint(0, 2, (members, 1, n_features)).float().mul_(2).sub_(1)
        self.signs = torch.nn.Parameter(signs)

    MemberInput.__init__ = init  # type: ignore[method-assign]
    MLP.fast_path_layers = lambda self: None  # type: ignore[method-assign]


def _set_steps(target: int) -> None:
    import math

    from dlpipe.pipeline._fit import TableRecipe

    def auto_epochs(self: Any, n_train: int, batch_size: int) -> int:
        steps = max(1, math.ceil(n_train / batch_size))
        return int(min(1000, max(50, math.ceil(target / steps))))

    TableRecipe.auto_epochs = auto_epochs  # type: ignore[method-assign]


def _set_skip_scale(scale: float) -> None:
    from dlpipe.models.mlp import MLP

    forward, layers = MLP.forward, MLP.fast_path_layers

    def scaled_forward(self: Any, x_num: Any, x_cat: Any = None) -> Any:
        if self.skip is None:
            return forward(self, x_num, x_cat)
        skip, self.skip = self.skip, None
        try:
            out = forward(self, x_num, x_cat)
        finally:
            self.skip = skip
        if self.numeric_input is not None or len(self.embeddings):
            raise NotImplementedError("skip_scale: numeric tables without the input layer only")
        if self.members > 1 and not self.training:
            raise NotImplementedError("skip_scale: averaged members (see below)")
        return out + scale * skip(x_num)

    def eval_forward(self: Any, x_num: Any, x_cat: Any = None) -> Any:
        if self.skip is None or self.training or self.members == 1:
            return scaled_forward(self, x_num, x_cat)
        self.train(True)  # every member's output, then the average (dropout is 0 in the ensemble)
        try:
            out = scaled_forward(self, x_num, x_cat)
        finally:
            self.train(False)
        return self.member_average(out)

    MLP.forward = eval_forward  # type: ignore[method-assign]
    MLP.fast_path_layers = lambda self: None if self.skip is not None else layers(self)  # type: ignore[method-assign]


def _set_betas(betas: tuple[float, ...]) -> None:
    from dlpipe.training import trainer
    from dlpipe.training.optim import FlatOptimizer

    def make_optimizer(self: Any, model: Any) -> FlatOptimizer:
        uses_momentum = self.optimizer_name in ("sgd", "rmsprop")
        return FlatOptimizer(
            model.parameters(),
            self.optimizer_name,
            learning_rate=self.learning_rate,
            momentum=self.momentum if uses_momentum else 0.0,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
            betas=(betas[0], betas[1]),
        )

    trainer.Trainer.make_optimizer = make_optimizer  # type: ignore[method-assign]


def _set_smoothing(eps: float) -> None:
    """Label smoothing on the members' training outputs ``(k, B, ...)``; eval-mode logits keep the plain loss."""
    import torch
    import torch.nn.functional as F

    from dlpipe.tasks import losses

    def members(logits: Any, y: Any, class_dim: int) -> bool:
        return bool(logits.dim() - y.dim() - class_dim == 1)

    def bce_call(self: Any, logits: Any, y: Any) -> Any:
        if members(logits, y, 0):
            x, t = losses._members(logits, y, 0)
            return F.binary_cross_entropy_with_logits(x, t * (1 - eps) + eps / 2)
        return F.binary_cross_entropy_with_logits(logits, y)

    def bce_grad(self: Any, logits: Any, y: Any) -> Any:
        return torch.sigmoid(logits).sub_(y * (1 - eps) + eps / 2).div_(logits.numel())

    def ce_call(self: Any, logits: Any, y: Any) -> Any:
        if members(logits, y, 1):
            return F.cross_entropy(*losses._members(logits, y, 1), label_smoothing=eps)
        return F.cross_entropy(logits, y)

    def ce_grad(self: Any, logits: Any, y: Any) -> Any:
        g = torch.softmax(logits, dim=1)  # (B, C)
        g.sub_(eps / g.shape[1])
        g[torch.arange(len(y), device=y.device), y] -= 1.0 - eps
        return g.div_(len(y))

    losses.BCEWithLogitsLoss.__call__ = bce_call  # type: ignore[method-assign]
    losses.BCEWithLogitsLoss.grad_logits = bce_grad  # type: ignore[method-assign]
    losses.CrossEntropyLoss.__call__ = ce_call  # type: ignore[method-assign]
    losses.CrossEntropyLoss.grad_logits = ce_grad  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variant", default="{}")
    ap.add_argument("--no-classic", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    tabular_suite.development_tables(ap, args.tables)  # refuses the suite's tables
    variant = json.loads(args.variant)
    apply_variant(variant)
    print(f"variant {json.dumps(variant)}", flush=True)
    rest = ["--tables", args.tables, "--seeds", args.seeds]
    rest += ["--options", json.dumps(variant.get("options", {}))]
    rest += ["--no-classic"] if args.no_classic else []
    rest += ["--out", args.out] if args.out else []
    return tabular_suite.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
