"""Run configuration: one frozen pydantic model per concern, flat fields of plain JSON types.

A config file (YAML or JSON) may use the sections ``data:``, ``model:`` and ``train:`` or put the
same keys at the top level, exactly as the CLI flags are named (``epochs: 50``). Unknown keys are
refused with the closest known name; values out of range are refused with the allowed range.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlpipe.core.errors import InvalidConfigError, UnsupportedFileError, format_names, suggest

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "SeriesConfig",
    "ImageConfig",
    "build_config",
    "read_config_file",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Frozen):
    """How a table becomes tensors: target, task, split fractions and preprocessing."""

    target: str | None = None
    # Validated where tasks are known (dlpipe.tasks); new input kinds add their own task names.
    task: str = "auto"
    # The primary metric the verdict is judged on; `auto`: ROC-AUC (binary), log loss (multiclass),
    # RMSE (regression), accuracy for images and sequences. Checked against the task (dlpipe.evaluation).
    metric: str = "auto"
    val_fraction: float = Field(0.2, ge=0.0, lt=0.9)
    test_fraction: float = Field(0.2, ge=0.0, lt=0.9)
    scaling: Literal["standard", "minmax", "l2", "none"] = "standard"
    max_onehot: int = Field(20, ge=2, le=1000)
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)


class ModelConfig(_Frozen):
    """The network: family and its hyper-parameters (``None`` means chosen from the data)."""

    # Validated by dlpipe.models.build_model against the registered families.
    family: str = "mlp"
    hidden: list[int] | None = None
    activation: Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu"] = "relu"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    batch_norm: bool = False
    embedding_dim: int | None = Field(None, ge=1, le=512)
    # Table MLPs: ensemble members sharing the hidden layers (TabM-mini); `auto`: from the row count
    # and task (dlpipe.models.mlp.default_members), 1: a plain MLP.
    members: int | Literal["auto"] = "auto"
    # Generative models (dlpipe.models.autoencoder/vae/gan): code width, decoder upsampling, KL warm-up.
    latent: int | None = Field(None, ge=1, le=4096)
    decoder: Literal["transpose", "unpool"] = "transpose"
    kl_anneal: int = Field(0, ge=0)


class TrainConfig(_Frozen):
    """The engine's knobs; ``"auto"`` values are resolved from the data size at fit time."""

    epochs: int | Literal["auto"] = "auto"
    batch_size: int | Literal["auto"] = "auto"
    learning_rate: float | Literal["auto"] = 1e-3
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adamw"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    schedule: Literal["none", "plateau", "cosine", "onecycle"] = "plateau"
    patience: int = Field(20, ge=0)
    monitor: str = "val_loss"
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True
    clip_grad: float | None = Field(None, gt=0.0)
    class_weight: Literal["none", "balanced"] = "none"
    loss: Literal["auto", "mse", "mae", "huber"] = "auto"
    deterministic: bool = False
    device: str = "auto"
    threads: int | None = Field(None, ge=1, le=256)


class SeriesConfig(_Frozen):
    """Time series and sequences (forecast / sequence-classification tasks); see docs/series.md."""

    time_column: str | None = None
    features: list[str] = Field(default_factory=list)
    lookback: int | Literal["auto"] = "auto"
    horizon: int = Field(1, ge=1, le=10_000)
    stride: int = Field(1, ge=1)
    recursive: bool = False
    period: int | None = Field(None, ge=2)
    znorm: bool = False
    strict: bool = False
    bidirectional: bool = False
    residual: bool = True
    relative: bool = True
    # Many series in one long table: the column naming each series (one global model); docs/series.md.
    series_column: str | None = None
    # Refit on the whole series with the chosen epochs before forecasting the future (docs/series.md).
    refit: bool = True


class ImageConfig(_Frozen):
    """Images (folders, CSV + image column, NPZ, IDX) and CNN/ResNet options; see docs/images.md."""

    image_column: str | None = None
    labels: str | None = None
    image_size: int | list[int] | None = None
    resize: bool = True
    strict: bool = False
    color: Literal["auto", "grey", "rgb"] = "auto"
    normalize: Literal["train", "imagenet", "none"] = "train"
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: str = "none"
    cache: bool = True
    channels: list[int] | None = None
    kernel_size: int | None = Field(None, ge=1, le=31)
    padding: Literal["same", "valid"] = "same"
    pretrained: str | None = None
    freeze_backbone: bool = False
    finetune_epochs: int = Field(0, ge=0)
    finetune_lr_factor: float = Field(0.1, gt=0.0, le=1.0)
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool | None = None


class RunConfig(_Frozen):
    """Everything one training run needs besides the data itself."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    series: SeriesConfig = SeriesConfig()
    image: ImageConfig = ImageConfig()
    seed: int = Field(0, ge=0)
    name: str | None = None


_SECTIONS: dict[str, type[_Frozen]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "series": SeriesConfig,
    "image": ImageConfig,
}
_TOP = ("seed", "name")


def _known_keys() -> list[str]:
    keys = list(_SECTIONS) + list(_TOP)
    for cls in _SECTIONS.values():
        keys.extend(cls.model_fields)
    return keys


def build_config(*layers: Mapping[str, Any] | None) -> RunConfig:
    """Merge config layers (file, then flags, later wins) into a validated :class:`RunConfig`.

    Each layer may use sections or flat keys; ``None`` values in a layer mean "not given".
    """
    merged: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    top: dict[str, Any] = {}
    # A flat key owned by several sections (``strict``) sets it in each of them.
    owner: dict[str, list[str]] = {}
    for sec, cls in _SECTIONS.items():
        for key in cls.model_fields:
            owner.setdefault(key, []).append(sec)
    for layer in layers:
        for key, value in (layer or {}).items():
            if key in _SECTIONS:
                if value is None:
                    continue
                if not isinstance(value, Mapping):
                    raise InvalidConfigError(
                        f"config section `{key}` is {value!r} but must be a mapping of keys to values; write it as `{key}:` followed by indented `key: value` lines."
                    )
                for sub, sub_value in value.items():
                    if sub not in _SECTIONS[key].model_fields:
                        allowed = format_names(sorted(_SECTIONS[key].model_fields), limit=40)
                        raise InvalidConfigError(
                            f"unknown config key `{key}.{sub}`{suggest(sub, _SECTIONS[key].model_fields)}; the `{key}` section allows: {allowed}."
                        )
                    if sub_value is not None:
                        merged[key][sub] = sub_value
            elif key in _TOP:
                if value is not None:
                    top[key] = value
            elif key in owner:
                if value is not None:
                    for sec in owner[key]:
                        merged[sec][key] = value
            else:
                allowed = format_names(sorted(set(_known_keys())), limit=60)
                raise InvalidConfigError(
                    f"unknown config key `{key}`{suggest(key, _known_keys())}; allowed keys are: {allowed}."
                )
    sections: dict[str, Any] = {}
    for name, values in merged.items():
        try:
            sections[name] = _SECTIONS[name](**values)
        except ValidationError as exc:
            raise InvalidConfigError(_describe(exc, name)) from None
    try:
        return RunConfig(**top, **sections)
    except ValidationError as exc:
        raise InvalidConfigError(_describe(exc, None)) from None


def _describe(exc: ValidationError, section: str | None) -> str:
    err = exc.errors()[0]
    # pydantic reports a failed union once per member ("int", "literal['auto']"): the field is loc[0].
    field = str(err["loc"][0]) if err["loc"] else "?"
    name = f"{section}.{field}" if section else field
    value = err.get("input")
    return f"config value `{name}` = {value!r} is invalid: {err['msg'].rstrip('.').lower()}; fix the value in the config file or flag."


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a plain dict (never executes anything)."""
    p = Path(path)
    if not p.is_file():
        raise UnsupportedFileError(
            f"config file {str(p)!r} does not exist; pass the path of a .yaml or .json file."
        )
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text or "{}")
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except (ValueError, Exception) as exc:  # yaml.YAMLError has no common base with ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidConfigError(
            f"config file {str(p)!r} could not be parsed ({first}); check its YAML/JSON syntax."
        ) from None
    if not isinstance(data, dict):
        raise InvalidConfigError(
            f"config file {str(p)!r} holds a {type(data).__name__}, but a mapping of keys to values was expected."
        )
    return data
