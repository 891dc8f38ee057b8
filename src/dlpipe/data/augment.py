"""Augmentation on batches of image tensors (training batches only): crop with padding, flip, rotation.

All of a batch's random transforms are folded into one affine grid per image and applied with a single
``grid_sample``: the cost is one pass over the batch, whatever the combination.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlpipe.core.errors import InvalidConfigError

__all__ = ["Augment", "parse_augment", "AUGMENTS"]

AUGMENTS = ("crop", "flip", "rotate")


def parse_augment(value: str | list[str] | None) -> tuple[str, ...]:
    """``"none"``, ``"all"`` or a comma list of crop, flip, rotate -> the chosen names.

    Example:
        >>> parse_augment("crop,rotate"), parse_augment("none")
        (('crop', 'rotate'), ())
    """
    if value is None or value == "none" or value is False:
        return ()
    if value is True or value == "all":
        return AUGMENTS
    names = [
        v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()
    ]
    bad = [n for n in names if n not in AUGMENTS]
    if bad:
        raise InvalidConfigError(
            f"`augment` has {bad[0]!r} but must be 'none', 'all' or a comma list of {', '.join(AUGMENTS)}."
        )
    return tuple(n for n in AUGMENTS if n in names)


@dataclass
class Augment:
    """Random per-image transforms of a (B, C, H, W) float batch.

    Args:
        crop_padding: Pad by this many pixels and crop back at a random offset (0: off). Defaults to `0`.
        flip: Horizontal flip with probability 0.5. Defaults to `False`.
        rotate_degrees: Rotate by a uniform angle in [-d, d] (0: off). Defaults to `0.0`.

    Example:
        >>> aug = Augment(crop_padding=2, flip=True, rotate_degrees=10)
        >>> aug(torch.ones(4, 1, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 8, 8])
    """

    crop_padding: int = 0
    flip: bool = False
    rotate_degrees: float = 0.0

    @classmethod
    def from_names(cls, names: tuple[str, ...], image_size: tuple[int, int]) -> Augment | None:
        if not names:
            return None
        pad = max(1, round(min(image_size) / 8)) if "crop" in names else 0
        return cls(
            crop_padding=pad,
            flip="flip" in names,
            rotate_degrees=10.0 if "rotate" in names else 0.0,
        )

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        rnd = torch.rand(b, 4, generator=generator).to(dev)
        angle = (rnd[:, 0] * 2 - 1) * math.radians(self.rotate_degrees)
        cos, sin = torch.cos(angle), torch.sin(angle)
        sx = torch.where(rnd[:, 1] < 0.5, -1.0, 1.0) if self.flip else torch.ones(b, device=dev)
        # integer pixel shifts in [-p, p], in grid units (the grid spans 2 over the image side)
        p = self.crop_padding
        tx = (torch.floor(rnd[:, 2] * (2 * p + 1)) - p) * 2 / w if p else torch.zeros(b, device=dev)
        ty = (torch.floor(rnd[:, 3] * (2 * p + 1)) - p) * 2 / h if p else torch.zeros(b, device=dev)
        theta = torch.stack(
            [torch.stack([cos * sx, -sin, tx], 1), torch.stack([sin * sx, cos, ty], 1)], 1
        )  # (B, 2, 3)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        mode = "bilinear" if self.rotate_degrees else "nearest"
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
