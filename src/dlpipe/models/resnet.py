"""ResNet-18/34/50 with torchvision's module names, so torchvision-format weight files load by path.

Pretrained weights are read with ``torch.load(weights_only=True)`` or safetensors (never pickle code);
the head (``fc``) is replaced for the task's classes; ``freeze_backbone`` trains only the head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError, InvalidInputError, UnsupportedFileError
from dlpipe.models.registry import register_model

__all__ = [
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "resnet",
    "load_pretrained",
    "freeze_backbone",
    "head_names",
    "RESNET_LAYERS",
]

RESNET_LAYERS: dict[str, tuple[str, list[int]]] = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's "v1.5" bottleneck: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet whose ``state_dict`` keys are torchvision's (conv1, bn1, layer1..4, fc).

    Args:
        block: ``"basic"`` or ``"bottleneck"``.
        layers: Blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        n_outputs: Width of the head ``fc``.
        in_channels: Image channels. Defaults to `3`.

    Example:
        >>> m = ResNet("basic", [2, 2, 2, 2], 10)
        >>> m(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    head = "fc"

    def __init__(self, block: str, layers: list[int], n_outputs: int, in_channels: int = 3) -> None:
        super().__init__()
        kind: type[BasicBlock] | type[Bottleneck] = BasicBlock if block == "basic" else Bottleneck
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(kind, 64, layers[0])
        self.layer2 = self._stage(kind, 128, layers[1], stride=2)
        self.layer3 = self._stage(kind, 256, layers[2], stride=2)
        self.layer4 = self._stage(kind, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * kind.expansion, n_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.backbone_frozen = False

    def _stage(
        self, kind: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * kind.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * kind.expansion, stride),
                nn.BatchNorm2d(planes * kind.expansion),
            )
        out: list[nn.Module] = [kind(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * kind.expansion
        out += [kind(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def train(self, mode: bool = True) -> ResNet:
        super().train(mode)
        if mode and self.backbone_frozen:
            # A frozen backbone keeps its BatchNorm statistics too: only the head learns.
            for name, module in self.named_children():
                if name != self.head:
                    module.eval()
        return self


def resnet(family: str, n_outputs: int, in_channels: int = 3) -> ResNet:
    block, layers = RESNET_LAYERS[family]
    return ResNet(block, layers, n_outputs, in_channels)


def _build(family: str) -> Any:
    def build(spec: dict[str, Any]) -> nn.Module:
        n_outputs, in_channels = spec.get("n_outputs"), spec.get("in_channels", 3)
        problems = []
        if not isinstance(n_outputs, int) or n_outputs < 1:
            problems.append(f"`n_outputs` is {n_outputs!r} but must be a positive integer")
        if not isinstance(in_channels, int) or in_channels < 1:
            problems.append(f"`in_channels` is {in_channels!r} but must be a positive integer")
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")
        return resnet(family, int(n_outputs), int(in_channels))  # type: ignore[arg-type]

    return build


for _family in RESNET_LAYERS:
    register_model(_family)(_build(_family))


def head_names(model: nn.Module) -> str:
    """The name of the module that is the task head (``fc`` for ResNets, ``classifier`` for the CNN)."""
    return str(getattr(model, "head", "classifier"))


def freeze_backbone(model: nn.Module, frozen: bool = True) -> list[str]:
    """Freeze (or unfreeze) every parameter outside the head; returns the names still trained."""
    head = head_names(model)
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad_(not frozen or name.startswith(head + "."))
        if p.requires_grad:
            trained.append(name)
    model.backbone_frozen = frozen  # type: ignore[assignment]  # read by the model's train()
    return trained


def _read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(
            f"pretrained weight file {str(p)!r} does not exist; pass the path of a .pth/.pt or .safetensors file."
        )
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedFileError(
            f"pretrained weight file {str(p)!r} could not be read as a state dict ({first[:200]}); "
            "save it with torch.save(model.state_dict(), path) or as safetensors."
        ) from None
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if wrapper in state and isinstance(state[wrapper], dict):
                state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsupportedFileError(
            f"pretrained weight file {str(p)!r} does not hold a mapping of names to tensors; save model.state_dict()."
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load a torchvision-format state dict into ``model``; the head is kept new when its shape differs.

    A 3-channel first convolution loaded into a 1-channel model is summed over its colour channels.
    Returns the names of the weights that were *not* loaded (the new head).

    Raises:
        InvalidInputError: naming the first key that is missing or whose shape does not match.
    """
    state = _read_weights(path)
    own = model.state_dict()
    head = head_names(model) + "."
    loaded: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, tensor in own.items():
        if key not in state:
            if key.startswith(head):
                skipped.append(key)
                continue
            raise InvalidInputError(
                f"pretrained weight file {str(path)!r} lacks the key {key!r} that the model needs (it has e.g. {next(iter(state), None)!r}); "
                "pass weights of the same architecture with torchvision's key names."
            )
        value = state[key]
        if (
            key == "conv1.weight"
            and value.ndim == 4
            and tensor.ndim == 4
            and value.shape[1] == 3
            and tensor.shape[1] == 1
            and value.shape[0] == tensor.shape[0]
        ):
            value = value.sum(dim=1, keepdim=True)  # RGB filters on grey images
        if tuple(value.shape) != tuple(tensor.shape):
            if key.startswith(head):
                skipped.append(key)
                continue
            raise InvalidInputError(
                f"pretrained weight {key!r} in {str(path)!r} has shape {tuple(value.shape)} but the model expects {tuple(tensor.shape)}; "
                "pass weights of the same architecture (e.g. resnet18 weights for the resnet18 model family)."
            )
        loaded[key] = value
    extra = [k for k in state if k not in own]
    if extra:
        raise InvalidInputError(
            f"pretrained weight file {str(path)!r} holds the key {extra[0]!r} that the model does not have; "
            "pass weights of the same architecture with torchvision's key names."
        )
    model.load_state_dict(loaded, strict=False)
    return skipped
