"""GAN networks: DCGAN-style generator/discriminator for small images, MLP pair for tables.

The ``"gan"`` family builds the *generator* (what a bundle stores and ``dlpipe sample`` runs);
``"gan_discriminator"`` builds the critic from the same spec. Image generators end in ``tanh``
(pixels in [-1, 1]; the fitter maps [0, 1] data there and back); table generators are linear
(standardised features).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import register_model

__all__ = [
    "DCGANGenerator",
    "DCGANDiscriminator",
    "MLPGenerator",
    "MLPDiscriminator",
    "GANPair",
    "ARCHS",
]

ARCHS = ("dcgan", "mlp")


class DCGANGenerator(nn.Module):
    """z (B, L) -> Linear -> (2W, S/4, S/4) -> 2 x [ConvTranspose(4, stride 2) + BN + ReLU] -> tanh image (B, C, S, S).

    Example:
        >>> DCGANGenerator(16, 1, 8, width=8)(torch.zeros(2, 16)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, latent: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        self.latent, self.start, self.width = latent, size // 4, width
        self.project = nn.Sequential(
            nn.Linear(latent, 2 * width * self.start**2),
            nn.BatchNorm1d(2 * width * self.start**2),
            nn.ReLU(),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, 2 * self.width, self.start, self.start))


class DCGANDiscriminator(nn.Module):
    """Image (B, C, S, S) -> 2 x [Conv(4, stride 2) + LeakyReLU(0.2)] -> logit (B, 1).

    Example:
        >>> DCGANDiscriminator(1, 8, width=8)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 1])
    """

    def __init__(self, channels: int, size: int, width: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        s = size // 4
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * s * s + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (B, F)
        # Minibatch standard deviation (Karras et al. 2018): how varied the batch is, as one more
        # feature, so a generator that collapses onto a few modes is easy to tell from real data.
        spread = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
        return self.head(torch.cat([h, spread.expand(len(h), 1)], dim=1))


class MLPGenerator(nn.Module):
    """z (B, L) -> [Linear + ReLU] x len(hidden) -> Linear -> (B, n_features) standardised values.

    Example:
        >>> MLPGenerator(4, 6, hidden=(8,))(torch.zeros(3, 4)).shape
        torch.Size([3, 6])
    """

    def __init__(
        self, latent: int, n_features: int, hidden: tuple[int, ...] | list[int] = (64, 64)
    ) -> None:
        super().__init__()
        self.latent = latent
        layers: list[nn.Module] = []
        width = latent
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers, nn.Linear(width, n_features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class MLPDiscriminator(nn.Module):
    """Row (B, F) -> [Linear + LeakyReLU(0.2)] x len(hidden) -> logit (B, 1)."""

    def __init__(self, n_features: int, hidden: tuple[int, ...] | list[int] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.body = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


class GANPair(nn.Module):
    """The generator and the discriminator as one module: what the trainer fits (with
    :class:`~dlpipe.training.steps.GANStep`), so checkpoints hold both networks. Calling it generates.

    Example:
        >>> pair = GANPair(MLPGenerator(4, 6, hidden=(8,)), MLPDiscriminator(6, hidden=(8,)))
        >>> pair(torch.zeros(3, 4)).shape
        torch.Size([3, 6])
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


def _validate(spec: dict[str, Any]) -> tuple[str, int, list[int]]:
    arch, latent, shape = (
        spec.get("arch", "dcgan"),
        spec.get("latent", 32),
        list(spec.get("shape") or []),
    )
    problems = []
    if arch not in ARCHS:
        problems.append(f"`arch` is {arch!r} but must be one of {', '.join(ARCHS)}")
    if not (isinstance(latent, int) and latent >= 1):
        problems.append(f"`latent` is {latent!r} but must be a positive integer such as 32")
    if arch == "dcgan" and (len(shape) != 3 or shape[1] != shape[2] or shape[1] % 4):
        problems.append(
            f"a DCGAN needs square images whose side is divisible by 4 as `shape` [C, S, S], got {shape!r}; use arch='mlp' or resize the images"
        )
    if arch == "mlp" and len(shape) < 1:
        problems.append("an MLP GAN needs `shape` [n_features]")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    return arch, int(latent), shape


@register_model("gan")
def _build_generator(spec: dict[str, Any]) -> nn.Module:
    arch, latent, shape = _validate(spec)
    if arch == "dcgan":
        return DCGANGenerator(latent, shape[0], shape[1], int(spec.get("width", 64)))
    return MLPGenerator(
        latent, int(torch.tensor(shape).prod()), list(spec.get("hidden") or [64, 64])
    )


@register_model("gan_discriminator")
def _build_discriminator(spec: dict[str, Any]) -> nn.Module:
    arch, _, shape = _validate(spec)
    if arch == "dcgan":
        return DCGANDiscriminator(
            shape[0], shape[1], int(spec.get("width", 64)), float(spec.get("dropout", 0.3))
        )
    return MLPDiscriminator(int(torch.tensor(shape).prod()), list(spec.get("hidden") or [64, 64]))
