"""Per-step strategies: what one batch does, for models the default supervised step does not cover.

The :class:`~dlpipe.training.trainer.Trainer` owns the one epoch loop (batch order, checkpoints,
early stopping, the NaN stop, LR schedules, trackers, progress). By default a step is the supervised
one, ``loss_fn(model(x), y)`` then one optimiser step (the MLP fast path or autograd). A
:class:`TrainStep` passed as ``Trainer(step=...)`` replaces only that step, the way Keras'
``Model.train_step`` carries its GAN example: :class:`GANStep` trains a discriminator and then a
generator with two optimisers, and everything around it behaves as for any other model.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.core.errors import DlpipeWarning, RunFailedError
from dlpipe.training.optim import FlatOptimizer

if TYPE_CHECKING:
    from dlpipe.training.trainer import TensorData, Trainer

__all__ = ["TrainStep", "GANStep", "OptimizerSet"]


class OptimizerSet:
    """Several :class:`FlatOptimizer` seen as one by schedules and checkpoints.

    ``lr`` reads the first optimiser's rate and sets all of them (a schedule moves every network's
    rate together); ``state_dict`` lists the groups of all optimisers in order, in the format of a
    single :class:`FlatOptimizer`, so a checkpoint stores them unchanged.

    Example:
        >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
        >>> opts = OptimizerSet([FlatOptimizer(a.parameters(), "adam"), FlatOptimizer(b.parameters(), "adam")])
        >>> opts.lr = 0.5; [o.lr for o in opts.optimizers]
        [0.5, 0.5]
    """

    def __init__(self, optimizers: Sequence[FlatOptimizer]) -> None:
        self.optimizers = list(optimizers)

    @property
    def lr(self) -> float:
        return self.optimizers[0].lr

    @lr.setter
    def lr(self, value: float) -> None:
        for opt in self.optimizers:
            opt.lr = value

    @property
    def groups(self) -> list[Any]:
        return [g for opt in self.optimizers for g in opt.groups]

    @property
    def steps(self) -> int:
        return self.optimizers[0].steps

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad()

    def grad_norm_clip_(self, max_norm: float) -> None:
        for opt in self.optimizers:
            opt.grad_norm_clip_(max_norm)

    def state_dict(self) -> dict[str, Any]:
        states = [opt.state_dict() for opt in self.optimizers]
        return {
            "kind": states[0]["kind"],
            "lr": states[0]["lr"],
            "steps": states[0]["steps"],
            "groups": [g for s in states for g in s["groups"]],
            "each": [{"kind": s["kind"], "lr": s["lr"], "steps": s["steps"]} for s in states],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        groups = list(state["groups"])
        for opt in self.optimizers:
            n = len(opt.groups)
            opt.load_state_dict({"lr": state["lr"], "steps": state["steps"], "groups": groups[:n]})
            groups = groups[n:]


class TrainStep:
    """One training step of a model kind, called by the trainer's epoch loop for every batch.

    Subclasses implement :meth:`__call__`: do the forward and backward passes and the optimiser
    step(s), and return the batch's values as 0-d tensors left on the device (the trainer averages them
    over the epoch and reads them once; the dict must hold ``"loss"``, the value the NaN stop, early
    stopping and progress look at). The other hooks are optional. Attributes of the step object are
    saved in checkpoints like a callback's (tensors, dicts of tensors, scalars), except those named in
    ``checkpoint_skip``.

    Attributes:
        drop_last: Drop the ragged last batch of an epoch (equal batches for BatchNorm and adversarial
            balance) instead of the trainer's rule (keep it unless it holds a single row).
    """

    drop_last = False
    checkpoint_skip: tuple[str, ...] = ()

    def make_optimizer(self, trainer: Trainer, model: nn.Module) -> Any:
        """The optimiser(s) the step uses; ``trainer.optimizer`` (schedules and checkpoints act on it)."""
        return trainer.make_optimizer(model)

    def on_fit_start(self, trainer: Trainer, train: TensorData) -> None:
        """Before the callbacks' ``on_fit_start`` (so a checkpoint restores state on top of this)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """After the epoch's batch order was drawn from ``trainer.generator``."""

    def __call__(
        self, trainer: Trainer, inputs: list[torch.Tensor], y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """After the epoch's logs joined the history, before the callbacks see them."""

    def on_nonfinite(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """A value became NaN or infinite: raise, or restore good weights and return to stop training."""
        raise RunFailedError(
            f"the training loss became {logs['loss']} at epoch {epoch}; lower `learning_rate` (now {trainer.optimizer.lr:g}) or set `clip_grad`."
        )

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch, before the callbacks' ``on_fit_end``."""


class GANStep(TrainStep):
    """A GAN's step: the discriminator on real (label-smoothed) and generated rows, then the
    generator with the non-saturating loss. Adam with beta1=0.5 for both networks (DCGAN).

    The trainer's model is a :class:`~dlpipe.models.gan.GANPair` (``generator`` and
    ``discriminator``), so checkpoints and early stopping hold both networks; its optimiser is an
    :class:`OptimizerSet` of the two. Logs ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (the
    discriminator's mean probability on real and generated rows) and ``loss`` (= ``g_loss``). When a
    loss turns NaN, training stops with the last good weights of both networks and a warning (an
    error in the first epoch). With ``grid_every`` > 0, ``grids[epoch]`` holds the generator's output
    for the same fixed noise after the first, every ``grid_every``-th and the last epoch.

    Args:
        latent: The generator's noise size.
        real_label: Smoothed target for real rows. Defaults to `0.9`.
        grid_every: Keep a sample grid every this many epochs (0: never). Defaults to `0`.
        n_grid: Samples per grid. Defaults to `64`.
    """

    drop_last = True
    checkpoint_skip = ("fixed", "_noise", "_good", "_ones", "_zeros", "_b")

    def __init__(
        self, latent: int, *, real_label: float = 0.9, grid_every: int = 0, n_grid: int = 64
    ) -> None:
        self.latent, self.real_label, self.grid_every, self.n_grid = (
            latent,
            real_label,
            grid_every,
            n_grid,
        )
        self.grids: dict[int, torch.Tensor] = {}
        self.stopped_reason: str | None = None

    def make_optimizer(self, trainer: Trainer, model: nn.Module) -> OptimizerSet:
        lr = trainer.learning_rate
        g, d = _networks(model)
        return OptimizerSet(
            [
                FlatOptimizer(g.parameters(), "adam", learning_rate=lr, betas=(0.5, 0.999)),
                FlatOptimizer(d.parameters(), "adam", learning_rate=lr, betas=(0.5, 0.999)),
            ]
        )

    def on_fit_start(self, trainer: Trainer, train: TensorData) -> None:
        # The fixed noise comes first from the batch-order generator (a resumed run draws the same).
        self.fixed = torch.randn(self.n_grid, self.latent, generator=trainer.generator)
        bs = min(trainer.batch_size, len(train))
        device = trainer.device
        self._ones, self._zeros = (
            torch.full((bs, 1), self.real_label, device=device),
            torch.zeros(bs, 1, device=device),
        )
        self.grids, self.stopped_reason = {}, None
        self._good: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if (
            self._good is None
        ):  # after the callbacks' on_fit_start: a resumed run's restored weights
            self._good = self._snapshot(trainer.model)
        steps = max(1, len(trainer.slices))
        bs = len(self._ones)
        # all of the epoch's noise in one call: (steps, 2, B, L), [.., 0] for D's fakes, [.., 1] for G's
        self._noise = torch.randn(steps, 2, bs, self.latent, generator=trainer.generator).to(
            trainer.device
        )
        self._b = 0

    def __call__(
        self, trainer: Trainer, inputs: list[torch.Tensor], y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        g, d = _networks(trainer.model)
        opt_g, opt_d = cast(OptimizerSet, trainer.optimizer).optimizers
        real, noise = inputs[0], self._noise[self._b]
        self._b += 1
        fake = g(noise[0])
        d_real, d_fake = d(real), d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, self._ones
        ) + F.binary_cross_entropy_with_logits(d_fake, self._zeros)
        opt_d.zero_grad()
        loss_d.backward()
        if trainer.clip_grad is not None:
            opt_d.grad_norm_clip_(trainer.clip_grad)
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(d(g(noise[1])), torch.ones_like(self._ones))
        opt_g.zero_grad()
        loss_g.backward()
        if trainer.clip_grad is not None:
            opt_g.grad_norm_clip_(trainer.clip_grad)
        opt_g.step()
        loss_g = loss_g.detach()
        return {
            "d_loss": loss_d.detach(),
            "g_loss": loss_g,
            "d_real": torch.sigmoid(d_real).mean().detach(),
            "d_fake": torch.sigmoid(d_fake).mean().detach(),
            "loss": loss_g,
        }

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self._good = self._snapshot(trainer.model)
        if self.grid_every and (
            epoch % self.grid_every == 0 or epoch == trainer.epochs or epoch == 1
        ):
            g = _networks(trainer.model)[0]
            was = g.training
            g.eval()
            with torch.inference_mode():
                self.grids[epoch] = g(self.fixed.to(trainer.device)).cpu()
            g.train(was)

    def on_nonfinite(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        d_loss, g_loss, lr = logs.get("d_loss"), logs.get("g_loss"), trainer.optimizer.lr
        last = epoch - 1
        if last == 0 or self._good is None:
            raise RunFailedError(
                f"the GAN losses became NaN in the first epoch (d_loss={d_loss}, g_loss={g_loss}); lower `learning_rate` (now {lr:g}) or check the data for extreme values."
            )
        # load_state_dict copies into the existing tensors, so the flat optimiser views stay valid
        g, d = _networks(trainer.model)
        g.load_state_dict(self._good[0])
        d.load_state_dict(self._good[1])
        self.stopped_reason = (
            f"the GAN losses became NaN at epoch {epoch} (d_loss={d_loss}, g_loss={g_loss}); training stopped and the generator from epoch {last}, "
            f"the last good one, was kept; lower `learning_rate` (now {lr:g}) to train longer."
        )
        warnings.warn(DlpipeWarning(self.stopped_reason), stacklevel=2)

    def on_fit_end(self, trainer: Trainer) -> None:
        trainer.history.best_epoch = len(
            trainer.history
        )  # no validation split: the last epoch is the one kept

    @staticmethod
    def _snapshot(pair: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        g, d = _networks(pair)
        return copy.deepcopy(g.state_dict()), copy.deepcopy(d.state_dict())


def _networks(pair: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of a :class:`~dlpipe.models.gan.GANPair`."""
    return pair.get_submodule("generator"), pair.get_submodule("discriminator")
