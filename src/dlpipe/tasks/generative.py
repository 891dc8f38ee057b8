"""Generative tasks: ``"reconstruction"`` (autoencoders: embeddings, anomaly scores) and ``"generate"``
(VAEs and GANs: new samples).

The reconstruction loss follows the input kind, so the output layer never needs a squashing
function before the loss:

| input                        | reconstruction | loss (on the decoder's raw output) | per-row score        |
|------------------------------|----------------|------------------------------------|----------------------|
| scaled table, sequence window| values         | MSE                                | mean squared error   |
| image with pixels in [0, 1]  | logits         | BCE-with-logits                    | mean BCE per pixel   |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from dlpipe.core.errors import InvalidConfigError, suggest

if TYPE_CHECKING:
    import torch

__all__ = [
    "GENERATIVE_TASKS",
    "RECONSTRUCTION_LOSSES",
    "is_generative_task",
    "reconstruction_loss_for",
    "reconstruction_loss",
    "per_sample_error",
    "vae_loss",
    "KLWeight",
]

GENERATIVE_TASKS: tuple[str, ...] = ("reconstruction", "generate")
RECONSTRUCTION_LOSSES = ("mse", "bce")
LossName = Literal["mse", "bce"]


def is_generative_task(task: str | None) -> bool:
    return task in GENERATIVE_TASKS


def reconstruction_loss_for(input_kind: str) -> LossName:
    """``"bce"`` for images in [0, 1], ``"mse"`` for scaled tables and sequences."""
    if input_kind == "image":
        return "bce"
    if input_kind in ("table", "sequence"):
        return "mse"
    raise InvalidConfigError(
        f"input kind {input_kind!r}{suggest(input_kind, ('table', 'image', 'sequence'))} has no reconstruction loss; use one of table, image, sequence."
    )


def _per_value(recon: torch.Tensor, x: torch.Tensor, loss: LossName) -> torch.Tensor:
    import torch.nn.functional as F

    if loss == "bce":
        return F.binary_cross_entropy_with_logits(recon, x, reduction="none")
    return (recon - x).square()


def reconstruction_loss(loss: LossName) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The autoencoder's training loss: mean over every value of the batch."""
    import torch.nn.functional as F

    if loss == "bce":
        return F.binary_cross_entropy_with_logits
    return F.mse_loss


def per_sample_error(recon: torch.Tensor, x: torch.Tensor, loss: LossName) -> torch.Tensor:
    """Reconstruction error per row / image / window: the mean over its values, shape (B,)."""
    return _per_value(recon.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), loss).mean(dim=1)


class KLWeight:
    """The weight beta of the KL term; with ``anneal_epochs`` > 0 it rises linearly from 0 to 1
    over those epochs (KL annealing against posterior collapse), else it stays 1."""

    def __init__(self, anneal_epochs: int = 0) -> None:
        self.anneal_epochs = anneal_epochs
        self.value = 0.0 if anneal_epochs > 0 else 1.0

    def set_epoch(self, finished_epochs: int) -> None:
        if self.anneal_epochs > 0:
            self.value = min(1.0, finished_epochs / self.anneal_epochs)


def vae_loss(
    latent: int, loss: LossName, beta: KLWeight | None = None
) -> tuple[
    Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
]:
    """The negative ELBO per sample (reconstruction summed over values + beta * KL), averaged over the
    batch; and on-device metrics ``recon``, ``kl`` and ``elbo`` (beta = 1, what early stopping watches)."""
    weight = beta or KLWeight(0)

    def parts(out: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = (
            out.shape[1] - 2 * latent
        )  # out is [reconstruction | mu | logvar], see dlpipe.models.vae
        recon, mu, logvar = out[:, :d], out[:, d : d + latent], out[:, d + latent :]
        rec = _per_value(recon, x.reshape(x.shape[0], -1), loss).sum(dim=1).mean()
        kl = (
            -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=1)
        ).mean()  # KL(q(z|x) || N(0, I))
        return rec, kl

    def loss_fn(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        rec, kl = parts(out, x)
        return rec + weight.value * kl

    def metrics(out: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rec, kl = parts(out, x)
        return {"recon": rec, "kl": kl, "elbo": rec + kl}

    return loss_fn, metrics
