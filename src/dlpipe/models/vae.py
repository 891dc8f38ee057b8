"""The variational autoencoder (Kingma & Welling): a Gaussian code, the reparameterisation trick.

``forward(x)`` returns one tensor ``[reconstruction | mu | logvar]`` of shape (B, D + 2L), so the
engine's chunked prediction and one-tensor loss signature work unchanged; :func:`split_vae_output`
takes it apart and :mod:`dlpipe.tasks.generative` holds the loss (reconstruction + beta * KL).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.autoencoder import _dense_stack
from dlpipe.models.registry import register_model

__all__ = ["VAE", "split_vae_output"]


class VAE(nn.Module):
    """Dense VAE over flattened inputs (table rows, or small images flattened to D = C*H*W values).

    Args:
        n_inputs: Input width D.
        latent: Width L of the Gaussian code. Defaults to `8`.
        hidden: Encoder layer sizes; the decoder mirrors them. Defaults to `(256, 128)`.
        shape: The input's shape without the batch axis, restored by :meth:`decode`. Defaults to `(n_inputs,)`.

    Example:
        >>> vae = VAE(64, latent=2, hidden=(32,), shape=(1, 8, 8))
        >>> vae(torch.zeros(5, 1, 8, 8)).shape, vae.decode(torch.zeros(5, 2)).shape
        (torch.Size([5, 68]), torch.Size([5, 1, 8, 8]))
    """

    def __init__(
        self,
        n_inputs: int,
        latent: int = 8,
        hidden: tuple[int, ...] | list[int] = (256, 128),
        shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        self.n_inputs, self.latent = n_inputs, latent
        self.shape = tuple(shape) if shape else (n_inputs,)
        sizes = [n_inputs, *hidden]
        self.encoder = nn.Sequential(*_dense_stack(sizes, "relu", 0.0))
        self.mu = nn.Linear(sizes[-1], latent)
        self.logvar = nn.Linear(sizes[-1], latent)
        back = [latent, *reversed(list(hidden))]
        self.decoder = nn.Sequential(
            *_dense_stack(back, "relu", 0.0), nn.Linear(back[-1], n_inputs)
        )

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.flatten(1))
        return self.mu(h), self.logvar(h).clamp(
            -12.0, 12.0
        )  # (B, L) each; the clamp keeps exp() finite

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: the posterior mean."""
        return self.encode_stats(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent (B, L) -> reconstruction logits/values in the input's shape."""
        return self.decoder(z).view(-1, *self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode_stats(x)
        # Reparameterisation: z = mu + sigma * eps keeps the sample differentiable in mu and sigma.
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return torch.cat([self.decoder(z), mu, logvar], dim=1)  # (B, D + 2L)


def split_vae_output(
    out: torch.Tensor, latent: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, D + 2L) -> reconstruction (B, D), mu (B, L), logvar (B, L)."""
    d = out.shape[1] - 2 * latent
    return out[:, :d], out[:, d : d + latent], out[:, d + latent :]


@register_model("vae")
def _build_vae(spec: dict[str, Any]) -> nn.Module:
    latent = spec.get("latent", 8)
    hidden = list(spec.get("hidden") or [256, 128])
    problems = []
    if not (isinstance(latent, int) and latent >= 1):
        problems.append(f"`latent` is {latent!r} but must be a positive integer such as 8")
    if not all(isinstance(h, int) and h >= 1 for h in hidden):
        problems.append(
            f"`hidden` is {hidden!r} but must be a list of positive integers such as [256, 128]"
        )
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    return VAE(int(spec["n_inputs"]), latent, hidden, spec.get("shape"))
