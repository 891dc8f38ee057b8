"""The generative recipes: autoencoders, VAEs and GANs on :func:`~dlpipe.pipeline.recipe.run_recipe`, the
one run path (a GAN through its two-optimiser :class:`~dlpipe.training.steps.GANStep`), so settings,
checkpoints, ``--resume``, user callbacks, trackers and progress work as for every kind.

Tables arrive as a :class:`~dlpipe.data.tabular.TabularDataset` (the target, if any, is a label kept
out of the inputs and used to score anomalies and colour embeddings); images and windows as an
:class:`~dlpipe.data.arrays.ArrayDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.config import RunConfig
from dlpipe.core.errors import InvalidConfigError
from dlpipe.data.arrays import ArrayDataset
from dlpipe.data.splits import split_indices
from dlpipe.models.autoencoder import default_hidden, warn_if_identity
from dlpipe.models.gan import GANPair
from dlpipe.models.registry import build_model
from dlpipe.pipeline import _generative_eval as ev
from dlpipe.pipeline.recipe import Evaluation, Recipe, RunContext
from dlpipe.pipeline.recipe import Prepared as RunPrepared
from dlpipe.tasks.generative import (
    KLWeight,
    reconstruction_loss,
    reconstruction_loss_for,
    vae_loss,
)
from dlpipe.tasks.task import Task
from dlpipe.training.callbacks import Callback
from dlpipe.training.history import History
from dlpipe.training.steps import GANStep, TrainStep
from dlpipe.training.trainer import TensorData, Trainer

__all__ = ["GenerativeRecipe", "GANRecipe", "GANTrainer", "Prepared"]

AE_FAMILIES = ("autoencoder", "conv_autoencoder", "recurrent_autoencoder")
GEN_FAMILIES = (*AE_FAMILIES, "vae", "gan")


@dataclass
class Prepared:
    """Split, scaled arrays and what the bundle needs to redo the scaling on raw input (a run's ``prep.state["data"]``)."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray | None]
    input_kind: str  # table | image | sequence
    bundle_kind: str  # the adapter: table | arrays
    preprocessor: dict[str, Any]
    label: str | None
    feature_names: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def _strat(y: np.ndarray | None) -> np.ndarray | None:
    if y is None:
        return None
    codes, uniques = __import__("pandas").factorize(y)
    return codes if 2 <= len(uniques) <= 50 else None


def _prepare_table(ds: Any, cfg: RunConfig) -> Prepared:
    from dlpipe.data.preprocessing import TabularPreprocessor
    from dlpipe.data.schema import infer_schema

    frame = ds.frame
    label = ds.target if ds.target and ds.target in frame.columns else None
    schema = infer_schema(
        frame,
        label or "",
        categorical=cfg.data.categorical,
        numeric=cfg.data.numeric,
        drop=cfg.data.drop,
    )
    labels = frame[label].to_numpy() if label else None
    test_frac = 0.0 if ds.test_frame is not None else cfg.data.test_fraction
    tr, va, te = split_indices(
        len(frame),
        val_fraction=cfg.data.val_fraction,
        test_fraction=test_frac,
        seed=cfg.seed,
        stratify=_strat(labels),
    )
    pre = TabularPreprocessor(schema, cfg.data.scaling, cfg.data.max_onehot).fit(frame.iloc[tr])
    if pre.cardinalities:
        raise InvalidConfigError(
            f"reconstruction needs every categorical column one-hot, but {len(pre.cardinalities)} have more than `max_onehot`={cfg.data.max_onehot} categories; raise `max_onehot` or drop those columns."
        )
    parts = {
        "train": frame.iloc[tr],
        "val": frame.iloc[va],
        "test": ds.test_frame if ds.test_frame is not None else frame.iloc[te],
    }
    x = {k: pre.transform(v, warn_unknown=k != "train")[0] for k, v in parts.items()}
    y = {
        k: (v[label].to_numpy() if label and label in v.columns else None) for k, v in parts.items()
    }
    return Prepared(
        x,
        y,
        "table",
        "table",
        pre.state(),
        label,
        pre.feature_names,
        {k: len(v) for k, v in x.items()},
    )


def _prepare_arrays(ds: ArrayDataset, cfg: RunConfig) -> Prepared:
    tr, va, te = split_indices(
        len(ds.x),
        val_fraction=cfg.data.val_fraction,
        test_fraction=cfg.data.test_fraction,
        seed=cfg.seed,
        stratify=_strat(ds.y),
    )
    idx = {"train": tr, "val": va, "test": te}
    x = {k: np.ascontiguousarray(ds.x[v]) for k, v in idx.items()}
    y = {k: (ds.y[v] if ds.y is not None else None) for k, v in idx.items()}
    state = {"shape": list(ds.sample_shape), "modality": ds.modality, "scale": ds.scale}
    return Prepared(
        x,
        y,
        ds.modality,
        "arrays",
        state,
        ds.target or ("label" if ds.y is not None else None),
        [],
        {k: len(v) for k, v in x.items()},
    )


def _spec(family: str, prep: Prepared, cfg: RunConfig, task: str) -> dict[str, Any]:
    shape = list(prep.x["train"].shape[1:])
    n_inputs = int(np.prod(shape))
    mc = cfg.model
    if family == "autoencoder" and prep.input_kind != "table":
        family = "conv_autoencoder" if prep.input_kind == "image" else "recurrent_autoencoder"
    latent = mc.latent
    if family == "gan":
        arch = (
            "dcgan"
            if prep.input_kind == "image" and shape[1] == shape[2] and shape[1] % 4 == 0
            else "mlp"
        )
        # width 32 up to 32x32 images (MNIST: 0.20 s per step on one thread against 0.47 s at width 64)
        return {
            "family": "gan",
            "arch": arch,
            "latent": latent or 32,
            "shape": shape,
            "width": (32 if shape[1] <= 32 else 64) if arch == "dcgan" else None,
            "hidden": list(mc.hidden) if mc.hidden else [128, 128],
        }
    latent = latent or min(8, max(2, n_inputs // 4))
    if family in ("autoencoder", "vae"):
        warn_if_identity(latent, n_inputs)
    if family == "autoencoder":
        return {
            "family": family,
            "n_inputs": n_inputs,
            "latent": latent,
            "hidden": list(mc.hidden or default_hidden(n_inputs, latent)),
            "activation": mc.activation,
            "dropout": mc.dropout,
        }
    if family == "vae":
        return {
            "family": family,
            "n_inputs": n_inputs,
            "latent": latent,
            "hidden": list(mc.hidden or ([256, 128] if n_inputs > 100 else [64, 32])),
            "shape": shape,
        }
    if family == "conv_autoencoder":
        levels = 2 if shape[1] % 4 == 0 else 1
        # A narrow code (inputs >= 16 x latent) gets a wider network, as the dense autoencoder does: on
        # digits with latent 2, kNN on the codes 0.69-0.74 with 16-32 maps, 0.78-0.79 adding a dense
        # 256 layer before the code, 0.84 with 32-64 maps and that layer.
        narrow = n_inputs >= 16 * latent
        return {
            "family": family,
            "channels": shape[0],
            "size": shape[1],
            "latent": latent,
            "widths": list(mc.hidden or ([32, 64] if narrow else [16, 32])[:levels]),
            "decoder": mc.decoder,
            "dense": 256 if narrow else 0,
        }
    return {
        "family": family,
        "n_features": shape[1],
        "seq_len": shape[0],
        "latent": latent,
        "hidden_size": (mc.hidden or [32])[0],
        "cell": "gru",
    }


def _check_family(family: str, task: str) -> str:
    if family == "mlp":
        family = "autoencoder" if task == "reconstruction" else "vae"
    if family not in GEN_FAMILIES:
        raise InvalidConfigError(
            f"task={task!r} needs a generative model family, but `model` is {family!r}; use one of {', '.join(GEN_FAMILIES)}."
        )
    if task == "generate" and family in AE_FAMILIES:
        raise InvalidConfigError(
            f"task='generate' needs a model that can sample, but {family!r} only reconstructs; use model='vae' or model='gan'."
        )
    if task == "reconstruction" and family == "gan":
        raise InvalidConfigError(
            "task='reconstruction' needs an encoder, which a GAN lacks; use model='autoencoder' or 'vae', or task='generate' for a GAN."
        )
    return family


class _KLCallback(Callback):
    def __init__(self, weight: KLWeight) -> None:
        self.weight = weight

    def on_fit_start(self, trainer: Trainer) -> None:
        self.weight.set_epoch(0)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        trainer.history.records[-1]["kl_weight"] = (
            self.weight.value
        )  # the weight this epoch trained with
        self.weight.set_epoch(epoch)


class _SampleGrids(Callback):
    """Decode the same fixed codes after the first, every ``every``-th and the last epoch (a VAE's
    progress, like the GAN's per-epoch grids); ``grids[epoch]`` holds (n, *shape) pixels in [0, 1], as
    tensors so a checkpoint keeps them and a resumed run still shows the epochs before the crash."""

    def __init__(
        self, latent: int, shape: list[int], epochs: int, every: int, seed: int, n: int = 64
    ) -> None:
        self.z = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))
        self.shape, self.epochs, self.every = shape, epochs, every
        self.grids: dict[int, torch.Tensor] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        self.grids = {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if epoch == 1 or epoch % self.every == 0 or epoch == self.epochs:
            model = trainer.model
            was = model.training
            model.eval()
            with torch.inference_mode():
                out = torch.sigmoid(model.decode(self.z.to(trainer.device)))  # type: ignore[operator]  # logits -> pixels
            model.train(was)
            self.grids[epoch] = out.reshape(len(self.z), *self.shape).cpu()


class GANTrainer:
    """A GAN fit on a tensor of real rows: the engine's :class:`Trainer` with a :class:`GANStep`
    (discriminator then generator, Adam with beta1=0.5, a sample grid per kept epoch from fixed noise,
    a stop with the last good weights when a loss turns NaN).

    Args:
        epochs: Passes over the data. Defaults to `50`.
        batch_size: Real rows per step. Defaults to `64`.
        learning_rate: For both optimisers. Defaults to `2e-4`.
        real_label: Smoothed target for real rows. Defaults to `0.9`.
        seed: Seeds the batch order and the noise. Defaults to `0`.
        callbacks: :class:`Callback` objects, or any object with ``on_epoch_end(trainer, epoch, logs)``. Defaults to `()`.
        grid_every: Keep a sample grid every this many epochs (0: never). Defaults to `0`.
        n_grid: Samples per grid. Defaults to `64`.
        threads: CPU threads (small convolutions: a second thread costs more than it wins). Defaults to `1`.
        device: Where to train. Defaults to `"cpu"`.
        clip_grad: Clip each network's gradient norm. Defaults to `None`.
    """

    def __init__(
        self,
        *,
        epochs: int = 50,
        batch_size: int = 64,
        learning_rate: float = 2e-4,
        real_label: float = 0.9,
        seed: int = 0,
        callbacks: list[Any] | tuple[Any, ...] = (),
        grid_every: int = 0,
        n_grid: int = 64,
        threads: int | None = 1,
        device: str = "cpu",
        clip_grad: float | None = None,
    ) -> None:
        self.epochs, self.batch_size, self.learning_rate, self.real_label = (
            epochs,
            batch_size,
            learning_rate,
            real_label,
        )
        self.seed, self.callbacks, self.grid_every, self.n_grid = (
            seed,
            list(callbacks),
            grid_every,
            n_grid,
        )
        self.threads, self.device, self.clip_grad = threads, device, clip_grad
        self.history = History()
        self.grids: dict[int, np.ndarray] = {}
        self.stopped_reason: str | None = None

    def fit(
        self, generator: nn.Module, discriminator: nn.Module, x: torch.Tensor, latent: int
    ) -> History:
        """Train both networks in place; returns the per-epoch losses (``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, ``loss``)."""
        step = GANStep(
            latent, real_label=self.real_label, grid_every=self.grid_every, n_grid=self.n_grid
        )
        callbacks = [cb if isinstance(cb, Callback) else _EpochEndOnly(cb) for cb in self.callbacks]
        trainer = Trainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
            callbacks=callbacks,
            device=self.device,
            threads=self.threads,
            clip_grad=self.clip_grad,
            step=step,
        )
        # no targets: an empty (N, 0) tensor costs nothing to shuffle
        self.history = trainer.fit(
            GANPair(generator, discriminator), None, TensorData((x,), x.new_empty(len(x), 0))
        )
        self.grids = {epoch: grid.numpy() for epoch, grid in step.grids.items()}
        self.stopped_reason = step.stopped_reason
        return self.history


class _EpochEndOnly(Callback):
    """Adapts an object that only has ``on_epoch_end`` (the hooks GANTrainer used to call)."""

    checkpoint_state = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self.inner.on_epoch_end(trainer, epoch, logs)


class GenerativeRecipe(Recipe):
    """Autoencoders and VAEs on a table (the target, if any, kept out of the inputs as a label) or on
    arrays (images, windows): each input is its own target; scored on the test split beside a mean row
    and PCA, with anomaly scores and embeddings when labels exist. A GAN trains through :class:`GANRecipe`.

    ``learning_rate: auto`` runs the range test on the reconstruction loss (or the negative ELBO).
    """

    kind = "arrays"

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        return GANRecipe() if cfg.model.family == "gan" else self

    def check(self, ds: Any, cfg: RunConfig) -> None:
        task = cfg.data.task
        if task not in ("reconstruction", "generate"):
            raise InvalidConfigError(
                f"array data trains generative models only, but `task` is {task!r}; pass task='reconstruction' (autoencoder) or task='generate' (vae, gan)."
            )
        family = _check_family(cfg.model.family, task)
        assert (family == "gan") == isinstance(self, GANRecipe), "select() picks the GAN recipe"

    def prepare(self, ds: Any, cfg: RunConfig) -> RunPrepared:
        data = _prepare_arrays(ds, cfg) if isinstance(ds, ArrayDataset) else _prepare_table(ds, cfg)
        task = Task(kind=cfg.data.task, target=data.label or "")  # type: ignore[arg-type]
        return RunPrepared(
            task=task,
            train=self._train_data(data),
            val=self._val_data(data),
            rows=data.rows,
            state={"data": data},
        )

    def _train_data(self, data: Prepared) -> TensorData:
        x = torch.from_numpy(data.x["train"])
        return TensorData((x,), x)  # the input is its own target

    def _val_data(self, data: Prepared) -> TensorData | None:
        x = torch.from_numpy(data.x["val"])
        return TensorData((x,), x)

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        task = ctx.cfg.data.task
        spec = _spec(
            _check_family(ctx.cfg.model.family, task), ctx.prep.state["data"], ctx.cfg, task
        )
        return build_model(spec), spec

    def loss(self, ctx: RunContext) -> Any:
        loss_name = reconstruction_loss_for(ctx.prep.state["data"].input_kind)
        if ctx.spec["family"] != "vae":
            return reconstruction_loss(loss_name)
        beta = KLWeight(ctx.cfg.model.kl_anneal)
        loss_fn, ctx.extras["metrics_fn"] = vae_loss(ctx.spec["latent"], loss_name, beta)
        ctx.extras["kl_weight"] = beta
        return loss_fn

    def metrics_fn(self, ctx: RunContext) -> Any:
        return ctx.extras.get("metrics_fn")  # a VAE's recon, kl and elbo

    def monitor(self, ctx: RunContext) -> str:
        # early stopping and the plateau schedule watch the reconstruction loss; a VAE's beta-free ELBO,
        # so KL annealing does not fool them
        return "val_elbo" if ctx.spec["family"] == "vae" else "val_loss"

    def callbacks(self, ctx: RunContext) -> list[Callback]:
        callbacks: list[Callback] = []
        if "kl_weight" in ctx.extras:
            callbacks.append(_KLCallback(ctx.extras["kl_weight"]))
        data = ctx.prep.state["data"]
        if ctx.spec["family"] == "vae" and data.input_kind == "image":
            epochs = ctx.trainer.epochs
            ctx.extras["grids"] = _SampleGrids(
                ctx.spec["latent"],
                list(data.x["train"].shape[1:]),
                epochs,
                max(1, epochs // 8),
                ctx.cfg.seed,
            )
            callbacks.append(ctx.extras["grids"])
        return callbacks

    def sample_grids(self, ctx: RunContext) -> dict[int, np.ndarray]:
        """Pixels in [0, 1] of the samples kept during training, by epoch."""
        grids = ctx.extras.get("grids")
        return (
            {epoch: pixels.numpy() for epoch, pixels in grids.grids.items()}
            if grids is not None
            else {}
        )

    def evaluate(self, ctx: RunContext) -> Evaluation:
        data, spec, family = ctx.prep.state["data"], ctx.spec, ctx.spec["family"]
        files = {
            f"plots/samples_epoch_{epoch:04d}.png": ev.image_grid_png(pixels)
            for epoch, pixels in self.sample_grids(ctx).items()
        }
        image = data.input_kind == "image"
        gen_info: dict[str, Any] = {
            "model": "gan" if family == "gan" else ("vae" if family == "vae" else "autoencoder"),
            "input": data.input_kind,
            "loss": reconstruction_loss_for(data.input_kind),
            "latent": spec["latent"],
            "output": ("tanh" if image else "values")
            if family == "gan"
            else ("logits" if image else "values"),
            "label": data.label,
            "feature_names": data.feature_names,
        }
        if data.y["train"] is not None:
            values, counts = np.unique(
                data.y["train"].astype(object) if data.input_kind == "table" else data.y["train"],
                return_counts=True,
            )
            gen_info["train_labels"] = {"values": values.tolist(), "counts": counts.tolist()}
        scores, eval_files = ev.evaluate_generative(ctx.model, gen_info, data, ctx.cfg.seed)
        files.update(eval_files)
        gen_info.update(scores.pop("_bundle", {}))
        test = scores.pop("test")
        stopped_reason = ctx.extras.get("stopped_reason")
        metrics = {**scores, **({"stopped_reason": stopped_reason} if stopped_reason else {})}
        manifest = {
            "kind": data.bundle_kind,
            "task": ctx.prep.task.to_dict(),
            "preprocessor": data.preprocessor,
            "model_spec": spec,
            "generative": gen_info,
            "metrics": {"test": test},
            "baselines": {},
            "feature_names": data.feature_names,
        }
        return Evaluation(test=test, manifest=manifest, metrics=metrics, extras={"files": files})

    def record_config(self, ctx: RunContext, resolved: dict[str, Any]) -> None:
        resolved["model"]["family"] = ctx.spec["family"]
        resolved["model"]["latent"] = ctx.spec["latent"]

    def base_metrics(self, ctx: RunContext) -> dict[str, Any]:
        return {
            "dataset": getattr(ctx.ds, "name", "data"),
            "task": ctx.cfg.data.task,
            "target": ctx.prep.state["data"].label,
            "model_family": ctx.spec["family"],
        }


class GANRecipe(GenerativeRecipe):
    """A GAN on a table or on images: the engine's loop with a :class:`~dlpipe.training.steps.GANStep` over
    a :class:`~dlpipe.models.gan.GANPair`, scored by the distance of samples to the training rows.

    No validation split to watch (no early stopping or plateau schedule; a cosine/one-cycle schedule
    moves both networks' rates); 64 rows a batch and 100 epochs when ``auto``. The rate is DCGAN's 2e-4
    (Radford et al. 2016, with Adam beta1=0.5) unless one was given, even when it equals 1e-3: the
    shared 1e-3 is the rate for one network minimising one loss, and two networks playing against each
    other at 1e-3 oscillate. ``learning_rate: auto`` also means 2e-4 (a range test needs a single loss).
    """

    auto_learning_rate = 2e-4
    default_learning_rate = 2e-4

    def select(self, ds: Any, cfg: RunConfig) -> Recipe:
        return self

    def auto_batch_size(self, n_train: int) -> int:
        return 64

    def auto_epochs(self, n_train: int, batch_size: int) -> int:
        return 100

    def _train_data(self, data: Prepared) -> TensorData:
        x = torch.from_numpy(data.x["train"])
        if data.input_kind == "image":
            x = x * 2 - 1  # [0, 1] -> [-1, 1], the range of the generator's tanh
        return TensorData(
            (x,), x.new_empty(len(x), 0)
        )  # no targets: an empty (N, 0) tensor costs nothing to shuffle

    def _val_data(self, data: Prepared) -> TensorData | None:
        return None  # nothing to watch: no single loss to stop on (the rows still count in `rows`)

    def build(self, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        generator, spec = super().build(ctx)
        ctx.extras["discriminator"] = build_model({**spec, "family": "gan_discriminator"})
        return generator, spec

    def threads(self, ctx: RunContext) -> int | None:
        return (
            ctx.cfg.train.threads or 1
        )  # small convolutions: a second thread costs more than it wins

    def step(self, ctx: RunContext) -> TrainStep | None:
        image = ctx.prep.state["data"].input_kind == "image"
        ctx.extras["step"] = GANStep(
            ctx.spec["latent"], grid_every=max(1, ctx.settings.epochs // 8) if image else 0
        )
        return ctx.extras["step"]

    def fit_model(self, ctx: RunContext) -> nn.Module:
        return GANPair(ctx.model, ctx.extras["discriminator"])

    def loss(self, ctx: RunContext) -> Any:
        return None  # the step holds both networks' losses

    def sample_grids(self, ctx: RunContext) -> dict[int, np.ndarray]:
        return {
            epoch: (grid.numpy() + 1) / 2 for epoch, grid in ctx.extras["step"].grids.items()
        }  # tanh -> [0, 1]

    def evaluate(self, ctx: RunContext) -> Evaluation:
        ctx.extras["stopped_reason"] = ctx.extras["step"].stopped_reason
        return super().evaluate(ctx)
