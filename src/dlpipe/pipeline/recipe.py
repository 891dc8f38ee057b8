"""One run path for every kind of data: a :class:`Recipe` per kind, and :func:`run_recipe`, which owns
a run from the resolved config to a :class:`~dlpipe.pipeline.run.Run`.

What differs by kind lives in the recipe (how its data is split and prepared, the model built, the
loss or train step, how the test split is scored beside baselines, what the bundle stores); what is
the same for every kind happens here, once:

1. seed everything (and switch on deterministic kernels when asked);
2. ``recipe.prepare`` -> :class:`Prepared` (the task, training and validation tensors, split rows);
3. ``recipe.build`` -> the model and its JSON spec (under ``torch.manual_seed(seed)``);
4. :func:`~dlpipe.pipeline.settings.resolve_settings` -> epochs, batch size, learning rate (every ``auto``);
5. a :class:`~dlpipe.training.trainer.Trainer` from the config, with ``recipe.step`` (GAN, ...);
6. the learning-rate range test when ``learning_rate: auto`` and the recipe trains on one loss;
7. callbacks: the recipe's own, then early stopping / schedule / progress, then the caller's
   (tracking, and checkpointing last: it restores what the others reset);
8. ``trainer.fit``, then ``recipe.after_fit`` (a second phase such as fine-tuning);
9. ``recipe.evaluate`` -> test scores beside baselines, the bundle's parts, extra files;
10. the run record: config.yaml as built, metrics.json (rows, training record, test, environment), manifest.

Recipes are registered in one table with an explicit priority (:func:`register_recipe`): detection
tries the highest priority first, so which kind a file is never depends on import order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.core.extensions import load_target

if TYPE_CHECKING:
    from torch import nn

    from dlpipe.pipeline.run import Run
    from dlpipe.pipeline.settings import Settings
    from dlpipe.training.callbacks import Callback
    from dlpipe.training.history import History
    from dlpipe.training.steps import TrainStep
    from dlpipe.training.trainer import TensorData, Trainer

__all__ = [
    "Recipe",
    "Prepared",
    "Evaluation",
    "RunContext",
    "run_recipe",
    "register_recipe",
    "recipe_for",
    "detect_dataset",
    "registered_recipes",
    "range_test",
    "trainer_from_config",
]


@dataclass
class Prepared:
    """A recipe's prepared data: nothing trained yet, every statistic fitted on the training split only.

    ``task`` owns the loss and the batch metrics (``loss_fn``, ``batch_metrics``, ``class_weights``);
    ``val`` is None when there is nothing to watch; ``rows`` is metrics.json's ``rows``; ``state``
    holds whatever else the recipe needs later (preprocessor, test arrays...).
    """

    task: Any
    train: TensorData
    val: TensorData | None
    rows: dict[str, int]
    n_train: int | None = None  # what auto settings count (windows, images...); default: len(train)
    evaluated_on_training_rows: bool = False
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What ``recipe.evaluate`` returns.

    ``test``: metrics.json's ``test`` (model, baselines, primary_metric, verdict); ``manifest``: the
    keyword arguments of :func:`~dlpipe.bundle.bundle.make_manifest` besides ``config`` (kind, task,
    preprocessor, baselines, ...; ``model_spec`` defaults to the built spec and ``metrics`` to the test
    part's model scores and primary metric); ``metrics``: further metrics.json keys of this kind;
    ``extras``: :class:`~dlpipe.pipeline.run.Run` extras (predictions, files).
    """

    test: dict[str, Any]
    manifest: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything a recipe hook may read: filled in as the run goes (``model`` after build, ``trainer`` and
    ``settings`` before fit, ``history`` after it)."""

    ds: Any
    cfg: RunConfig
    progress: str
    prep: Prepared
    model: nn.Module = None  # type: ignore[assignment]
    spec: dict[str, Any] = field(default_factory=dict)
    settings: Settings = None  # type: ignore[assignment]
    trainer: Trainer = None  # type: ignore[assignment]
    loss_fn: Any = None
    fitted: nn.Module = None  # type: ignore[assignment]  # what the trainer fits: the model or a wrapper (recipe.fit_model)
    history: History = None  # type: ignore[assignment]
    extras: dict[str, Any] = field(
        default_factory=dict
    )  # recipe scratch space shared between hooks

    def make_trainer(
        self,
        *,
        epochs: int | None = None,
        learning_rate: float | None = None,
        callbacks: list[Callback] | None = None,
    ) -> Trainer:
        """A :class:`Trainer` from this run's config and settings (one place builds them all)."""
        return trainer_from_config(
            self.cfg,
            self.settings,
            epochs=epochs,
            learning_rate=learning_rate,
            callbacks=callbacks or [],
            threads=self.recipe_threads,
        )

    recipe_threads: int | None = None


class Recipe:
    """How one kind of data trains. Subclass it, override what differs, and :func:`register_recipe` it.

    Class attributes with per-kind rules (see :mod:`dlpipe.pipeline.settings`): ``auto_learning_rate``
    (``"range_test"`` or a number), ``default_learning_rate`` (used when the user gave none; None: the
    config's), ``default_schedule`` (the learning-rate schedule when the user named none; None: the
    config's), ``plateau_divisor``/``plateau_default`` (the plateau schedule's wait).
    """

    kind: str = ""
    auto_learning_rate: str | float = "range_test"
    default_learning_rate: float | None = None
    default_schedule: str | None = None
    plateau_divisor: int = 2
    plateau_default: int = 10

    def learning_rate_for(self, prep: Prepared | None) -> float | None:
        """The kind's own rate when the user gave none (None: the config's); ``prep``: the prepared data."""
        return self.default_learning_rate

    def schedule(self, cfg: RunConfig, has_val: bool = True) -> str:
        """The schedule this run uses: the user's when given, else the recipe's default, else the config's
        (``has_val``: whether the run watches a validation split; a recipe may pick another default without)."""
        if "schedule" in cfg.train.model_fields_set or self.default_schedule is None:
            return cfg.train.schedule
        return self.default_schedule

    # ---- settings
    def auto_batch_size(self, n_train: int) -> int:
        from dlpipe.pipeline.settings import auto_batch_size

        return auto_batch_size(n_train)

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        from dlpipe.pipeline.settings import auto_epochs

        return auto_epochs(n_train, batch_size)

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        """The recipe that trains this data with this config (a table asked to reconstruct: the generative one,
        whose own ``select`` then picks the GAN's); return ``self`` when this one does."""
        return self

    # ---- the run
    def check(self, ds: Any, cfg: RunConfig) -> None:
        """Refuse impossible settings before anything is prepared (one sentence)."""

    def prepare(self, ds: Any, cfg: RunConfig) -> Prepared:
        raise NotImplementedError

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        """The model and its JSON spec (``dlpipe.models.registry.build_model(spec)`` rebuilds it)."""
        raise NotImplementedError

    def threads(self, ctx: RunContext) -> int | None:
        """CPU threads for training (None: the engine picks)."""
        return ctx.cfg.train.threads

    def step(self, ctx: RunContext) -> TrainStep | None:
        """A custom train step (a GAN's two networks); None: the engine's supervised step."""
        return None

    def loss(self, ctx: RunContext) -> Any:
        """The loss on logits: the task's, with balanced class weights when ``class_weight: balanced``."""
        task = ctx.prep.task
        balanced = ctx.cfg.train.class_weight == "balanced"
        weights = task.class_weights(ctx.prep.train.y.cpu().numpy()) if balanced else None
        return task.loss_fn(weights, device=ctx.trainer.device)

    def metrics_fn(self, ctx: RunContext) -> Any:
        fn = getattr(ctx.prep.task, "batch_metrics", None)
        if fn is None:
            return None
        # the ROC-AUC (a sort of the validation rows each epoch) only when early stopping watches it
        return fn(roc_auc=True) if self.monitor(ctx) == "val_roc_auc" else fn()

    def monitor(self, ctx: RunContext) -> str:
        return ctx.cfg.train.monitor

    def callbacks(self, ctx: RunContext) -> list[Callback]:
        """Callbacks of this kind, before the standard ones (a VAE's KL warm-up, sample grids)."""
        return []

    def fit_model(self, ctx: RunContext) -> nn.Module:
        """What the trainer fits (the model, or a wrapper: bf16 autocast, a GAN's pair)."""
        return ctx.model

    def after_fit(self, ctx: RunContext) -> History:
        """A further phase after the first fit (fine-tuning an unfrozen backbone); returns the whole history."""
        return ctx.history

    def evaluate(self, ctx: RunContext) -> Evaluation:
        raise NotImplementedError

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        """Write the model actually built into config.yaml's ``resolved`` (default sizes, family)."""

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        """metrics.json's identity keys: dataset, task, target, classes."""
        task = ctx.prep.task
        return {
            "dataset": getattr(ctx.ds, "name", "data"),
            "task": getattr(task, "kind", None),
            "target": getattr(task, "target", None),
            "classes": getattr(task, "classes", None),
        }


def trainer_from_config(
    cfg: RunConfig,
    settings: Settings,
    *,
    epochs: int | None = None,
    learning_rate: float | None = None,
    callbacks: list[Callback] | None = None,
    threads: int | None = None,
    step: TrainStep | None = None,
    optimizer: str | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
) -> Trainer:
    """The engine from a run's config and resolved settings (the only place a run builds a Trainer)."""
    from dlpipe.training.trainer import Trainer

    tc = cfg.train
    return Trainer(
        epochs=epochs if epochs is not None else settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=learning_rate if learning_rate is not None else settings.learning_rate,
        optimizer=optimizer or tc.optimizer,
        momentum=tc.momentum if momentum is None else momentum,
        nesterov=tc.nesterov,
        weight_decay=tc.weight_decay if weight_decay is None else weight_decay,
        clip_grad=tc.clip_grad,
        seed=cfg.seed,
        device=tc.device,
        threads=threads,
        callbacks=callbacks or [],
        step=step,
    )


def range_test(ctx: RunContext, fit_model: nn.Module, kind: str) -> dict[str, Any] | None:
    """With ``learning_rate: auto`` (``ctx.settings.find_learning_rate``): run Smith's range test on a copy of
    ``fit_model`` and set the trainer's rate; returns the curve (``lrs``, ``losses``, ``chosen``) or None."""
    if not ctx.settings.find_learning_rate:
        return None
    if ctx.loss_fn is None:
        raise InvalidConfigError(
            f"`learning_rate: auto` needs one loss, which a {kind} run does not have; pass a number."
        )
    import torch

    from dlpipe.training.lr_finder import find_learning_rate

    # The range test's dropout draws from the global generator: fork it, so training draws exactly what
    # a rerun with the chosen rate (config.yaml) draws, and the run reproduces from its record.
    trainer = ctx.trainer
    cuda = [trainer.device.index or 0] if trainer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        found = find_learning_rate(trainer, fit_model, ctx.loss_fn, ctx.prep.train)
    trainer.learning_rate = found.learning_rate
    return {"lrs": found.lrs, "losses": found.losses, "chosen": found.learning_rate}


def run_recipe(
    recipe: Recipe,
    ds: Any,
    cfg: RunConfig,
    *,
    progress: str = "auto",
    extra_callbacks: list[Callback] | None = None,
) -> Run:
    """Train, evaluate and bundle ``ds`` with ``recipe``: the one function every run goes through."""
    from dlpipe.core.runtime import deterministic_mode, threads_for_load

    # Both put back afterwards, so later runs are not affected. One torch thread on a busy machine (or a
    # deterministic run) for the whole run, evaluation and attributions included; the engine picks its own.
    with deterministic_mode(cfg.train.deterministic), threads_for_load(cfg.train.deterministic):
        return _run(recipe, ds, cfg, progress, extra_callbacks)


def _run(
    recipe: Recipe,
    ds: Any,
    cfg: RunConfig,
    progress: str,
    extra_callbacks: list[Callback] | None,
) -> Run:
    import torch

    from dlpipe.bundle.bundle import Bundle, make_manifest
    from dlpipe.core.runtime import seed_everything
    from dlpipe.pipeline._callbacks import environment, standard_callbacks, training_record
    from dlpipe.pipeline.run import Run
    from dlpipe.pipeline.settings import resolve_settings

    recipe = _select(recipe, ds, cfg)
    recipe.check(ds, cfg)
    seed_everything(cfg.seed)
    prep = recipe.prepare(ds, cfg)
    if cfg.data.metric != "auto":  # a metric the task does not score is refused before training
        from dlpipe.evaluation.metrics import primary_metric

        primary_metric(str(getattr(prep.task, "kind", "")), cfg.data.metric)
    ctx = RunContext(ds=ds, cfg=cfg, progress=progress, prep=prep)
    torch.manual_seed(cfg.seed)
    ctx.model, ctx.spec = recipe.build(ctx)
    ctx.settings = resolve_settings(
        cfg, recipe, prep.n_train if prep.n_train is not None else len(prep.train), prep=prep
    )
    ctx.recipe_threads = recipe.threads(ctx)
    step = recipe.step(ctx)
    trainer = trainer_from_config(cfg, ctx.settings, threads=ctx.recipe_threads, step=step)
    ctx.trainer = trainer
    ctx.loss_fn = None if step is not None else recipe.loss(ctx)
    fit_model = ctx.fitted = recipe.fit_model(ctx)
    lr_curve = range_test(ctx, fit_model, recipe.kind)
    has_val = prep.val is not None and len(prep.val) > 0
    tc = cfg.train.model_copy(
        update={"monitor": recipe.monitor(ctx), "schedule": recipe.schedule(cfg, has_val)}
    )
    callbacks = recipe.callbacks(ctx)
    callbacks += standard_callbacks(
        tc,
        has_val,
        progress,
        plateau_divisor=recipe.plateau_divisor,
        plateau_default=recipe.plateau_default,
    )
    callbacks += list(
        extra_callbacks or ()
    )  # tracking, then checkpointing (last: it restores state)
    trainer.callbacks = callbacks
    ctx.history = trainer.fit(
        fit_model,
        ctx.loss_fn,
        prep.train,
        prep.val if has_val else None,
        metrics_fn=recipe.metrics_fn(ctx),
    )
    ctx.history = recipe.after_fit(ctx)
    ctx.model.eval()
    evaluation = recipe.evaluate(ctx)

    resolved = cfg.model_dump()
    resolved["train"].update(
        epochs=trainer.epochs,
        batch_size=trainer.batch_size,
        learning_rate=trainer.learning_rate,
        schedule=tc.schedule,
    )
    recipe.record_config(ctx, resolved)
    metrics: dict[str, Any] = {
        **recipe.base_metrics(ctx),
        "rows": prep.rows,
        "evaluated_on_training_rows": prep.evaluated_on_training_rows,
        **training_record(ctx.history, ctx.model),
        "test": evaluation.test,
        **evaluation.metrics,
        "environment": environment(trainer, cfg),
    }
    parts = dict(evaluation.manifest)
    parts.setdefault("model_spec", ctx.spec)  # the spec build_model rebuilds the network from
    test = evaluation.test
    parts.setdefault(
        "metrics", {"test": {"model": test["model"], "primary_metric": test["primary_metric"]}}
    )
    manifest = make_manifest(config=resolved, **parts)
    extras = dict(evaluation.extras)
    if lr_curve is not None:
        extras["lr_finder"] = lr_curve
    return Run(
        config=resolved,
        history=ctx.history,
        metrics=metrics,
        bundle=Bundle(manifest, ctx.model),
        extras=extras,
    )


# ----------------------------------------------------------------------------------- the table
Detector = Callable[[Any, RunConfig, Any], Any]


@dataclass
class _Entry:
    kind: str
    recipe: (
        Recipe | str
    )  # an object, or "dlpipe.pipeline.<module>:<attribute>" loaded when first used
    detect: Detector | None
    priority: int


_RECIPES: dict[str, _Entry] = {}


def register_recipe(
    kind: str, recipe: Recipe | str, *, detect: Detector | None = None, priority: int = 0
) -> None:
    """Add (or replace) the recipe of data kind ``kind``.

    ``detect(data, cfg, test)`` returns a dataset object (whose ``kind`` is ``kind``) when it recognises
    the data and None otherwise; detectors are tried from the highest ``priority`` down (ties: the
    order of registration), and data nothing recognises is read as a table. A dataset object passed
    directly needs no detector: its ``kind`` attribute picks the recipe.
    """
    if isinstance(recipe, str) and not recipe.startswith("dlpipe.pipeline."):
        raise ValueError(
            f"a recipe named by string must live in dlpipe.pipeline, not {recipe!r}; pass the Recipe object."
        )
    _RECIPES[kind] = _Entry(kind, recipe, detect, priority)


def registered_recipes() -> list[tuple[str, int]]:
    """``[(kind, priority)]`` in the order detection tries them."""
    return [(e.kind, e.priority) for e in _ordered()]


def _ordered() -> list[_Entry]:
    entries = list(_RECIPES.values())
    return sorted(entries, key=lambda e: -e.priority)  # stable: ties keep registration order


def detect_dataset(data: Any, cfg: RunConfig, test: Any) -> Any:
    """The first registered detector's dataset for ``data`` (highest priority first), or None."""
    for entry in _ordered():
        if entry.detect is not None:
            found = entry.detect(data, cfg, test)
            if found is not None:
                return found
    return None


def recipe_for(ds: Any, cfg: RunConfig) -> Recipe:
    """The recipe for a dataset object (by its ``kind``), after the recipe's own :meth:`Recipe.select`."""
    kind = getattr(ds, "kind", None)
    entry = _RECIPES.get(str(kind))
    if entry is None:
        known = ", ".join(sorted(_RECIPES))
        raise InvalidConfigError(
            f"no recipe is registered for data of kind {kind!r}; registered kinds are {known}."
        )
    if isinstance(entry.recipe, str):
        entry.recipe = load_target(entry.recipe)()
    assert isinstance(entry.recipe, Recipe)
    return _select(entry.recipe, ds, cfg)


def _select(recipe: Recipe, ds: Any, cfg: RunConfig) -> Recipe:
    """Follow :meth:`Recipe.select` until a recipe keeps the run (a table -> generative -> GAN)."""
    for _ in range(8):
        chosen = recipe.select(ds, cfg)
        if chosen is recipe:
            return recipe
        recipe = chosen
    raise AssertionError(
        f"Recipe.select keeps handing over ({type(recipe).__name__}); return self from the recipe that trains."
    )
