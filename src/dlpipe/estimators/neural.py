"""``NeuralClassifier`` and ``NeuralRegressor``: scikit-learn estimators over dlpipe's engine.

They take numeric arrays (put a ``StandardScaler`` or a ``ColumnTransformer`` in front, as with any
scikit-learn model) and train dlpipe's MLP with the same :class:`~dlpipe.training.Trainer` the CLI
uses: in-memory tensors, index-sliced batches, one fused optimiser step. ``__init__`` only stores
its arguments (so ``get_params``/``set_params``/``clone`` and grid searches work); ``fit`` validates
them and builds ``model_``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from dlpipe.core.errors import InvalidConfigError, InvalidTargetError, suggest
from dlpipe.models.mlp import ACTIVATIONS

__all__ = ["NeuralClassifier", "NeuralRegressor"]

_OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
# Nested parameters (``optimizer__weight_decay``) route to the flat arguments they name.
_NESTED = {
    "optimizer": {
        "learning_rate": "learning_rate",
        "lr": "learning_rate",
        "weight_decay": "weight_decay",
        "momentum": "momentum",
        "nesterov": "nesterov",
    },
    "module": {
        "hidden": "hidden",
        "activation": "activation",
        "dropout": "dropout",
        "batch_norm": "batch_norm",
    },
}


class _NeuralBase(BaseEstimator):
    def __init__(
        self,
        hidden: Sequence[int] = (64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        optimizer: str = "adamw",
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        nesterov: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        seed: int | None = 0,
        device: str = "cpu",
        verbose: int = 0,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.nesterov = nesterov
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ params
    def set_params(self, **params: Any) -> Any:
        """Set parameters; ``optimizer__weight_decay=...`` and ``module__hidden=...`` route to the flat names."""
        flat: dict[str, Any] = {}
        for key, value in params.items():
            prefix, sep, name = key.partition("__")
            if sep and prefix in _NESTED:
                if name not in _NESTED[prefix]:
                    raise InvalidConfigError(
                        f"`{key}` is not a parameter{suggest(name, _NESTED[prefix])}; {prefix}__ takes: {', '.join(_NESTED[prefix])}."
                    )
                flat[_NESTED[prefix][name]] = value
            else:
                flat[key] = value
        return super().set_params(**flat)

    def _check_params(self) -> None:
        problems = []
        hidden = self.hidden
        if isinstance(hidden, (int, np.integer)):
            hidden = (int(hidden),)
        if not isinstance(hidden, (list, tuple)) or any(
            not isinstance(h, (int, np.integer)) or h < 1 for h in hidden
        ):
            problems.append(
                f"`hidden` is {self.hidden!r} but must be a tuple of positive integers such as (64, 32)"
            )
        if self.activation not in ACTIVATIONS:
            problems.append(
                f"`activation` is {self.activation!r}{suggest(str(self.activation), ACTIVATIONS)} but must be one of {', '.join(ACTIVATIONS)}"
            )
        if self.optimizer not in _OPTIMIZERS:
            problems.append(
                f"`optimizer` is {self.optimizer!r}{suggest(str(self.optimizer), _OPTIMIZERS)} but must be one of {', '.join(_OPTIMIZERS)}"
            )
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            problems.append(f"`dropout` is {self.dropout!r} but must be in [0, 1)")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                problems.append(f"`{name}` is {v!r} but must be a positive integer")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            problems.append(
                f"`learning_rate` is {self.learning_rate!r} but must be a positive number"
            )
        if self.early_stopping and not (0 < self.validation_fraction < 1):
            problems.append(
                f"`validation_fraction` is {self.validation_fraction!r} but must be between 0 and 1 with early_stopping=True"
            )
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")
        self._hidden = [int(h) for h in hidden]  # type: ignore[union-attr]

    # ------------------------------------------------------------------ engine
    def _fit_tensors(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_outputs: int,
        loss_fn: Callable[..., Any],
        strat: np.ndarray | None,
    ) -> None:
        import torch

        from dlpipe.models.registry import build_model
        from dlpipe.training.callbacks import Callback, EarlyStopping, ProgressCallback
        from dlpipe.training.trainer import TensorData, Trainer

        seed = 0 if self.seed is None else int(self.seed)
        torch.manual_seed(seed)
        spec = {
            "family": "mlp",
            "n_numeric": int(x.shape[1]),
            "n_outputs": n_outputs,
            "hidden": self._hidden,
            "activation": self.activation,
            "dropout": float(self.dropout),
            "batch_norm": bool(self.batch_norm),
        }
        self.model_ = build_model(spec)
        self.model_spec_ = spec
        x_t, y_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)
        callbacks: list[Callback] = []
        val = None
        if self.early_stopping and len(x) >= 10:
            n_val = max(1, int(round(len(x) * self.validation_fraction)))
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(x))
            val_idx, tr_idx = order[:n_val], order[n_val:]
            val = TensorData((x_t[val_idx],), y_t[val_idx])
            x_t, y_t = x_t[tr_idx], y_t[tr_idx]
            callbacks.append(EarlyStopping("val_loss", patience=int(self.patience)))
        if self.verbose:
            callbacks.append(ProgressCallback("plain"))
        trainer = Trainer(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            optimizer=self.optimizer,
            momentum=float(self.momentum),
            nesterov=bool(self.nesterov),
            weight_decay=float(self.weight_decay),
            callbacks=callbacks,
            seed=seed,
            device=self.device,
        )
        self.history_ = trainer.fit(self.model_, loss_fn, TensorData((x_t,), y_t), val)
        self.n_iter_ = len(self.history_)
        self.loss_ = self.history_.records[-1]["loss"]

    def _logits(self, X: Any) -> np.ndarray:
        import copy

        import torch

        from dlpipe.training.trainer import predict_logits

        check_is_fitted(self, "model_")
        x = validate_data(self, X, reset=False, dtype=np.float64)
        # float64 at predict: a row's output then does not depend on the batch it is predicted in
        # (float32 matrix products differ in the last bits between batch sizes).
        model64 = copy.deepcopy(self.model_).to("cpu").double()
        return predict_logits(model64, [torch.from_numpy(np.ascontiguousarray(x))]).numpy()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.seed is None
        return tags


def _weighted(loss: Callable[..., Any]) -> Callable[..., Any]:
    """A loss over targets packed as (N, 2): column 0 the target, column 1 the sample weight."""

    def fn(logits: Any, y: Any) -> Any:
        w = y[:, 1]
        per_row = loss(logits, y[:, 0])
        return (per_row * w).sum() / w.sum().clamp_min(1e-12)

    return fn


class NeuralClassifier(ClassifierMixin, _NeuralBase):
    """A neural-network classifier (dlpipe's MLP, trained by dlpipe's engine) with scikit-learn's API.

    Binary targets train one logit with ``BCEWithLogits``; more classes train C logits with cross
    entropy; probabilities only appear in :meth:`predict_proba`.

    Args:
        hidden: Hidden layer sizes. Defaults to `(64, 32)`.
        activation: One of relu, gelu, tanh, sigmoid, leaky_relu, silu. Defaults to `"relu"`.
        dropout: Dropout after each hidden layer. Defaults to `0.0`.
        batch_norm: Batch normalisation in each hidden layer. Defaults to `False`.
        epochs: Passes over the data. Defaults to `100`.
        batch_size: Rows per step. Defaults to `32`.
        learning_rate: Step size. Defaults to `1e-3`.
        optimizer: adamw, adam, sgd or rmsprop. Defaults to `"adamw"`.
        weight_decay: Weight decay. Defaults to `0.0`.
        momentum: Momentum (sgd, rmsprop). Defaults to `0.9`.
        nesterov: Nesterov momentum (sgd). Defaults to `False`.
        early_stopping: Hold out ``validation_fraction`` and stop when its loss stalls. Defaults to `False`.
        validation_fraction: Share held out for early stopping. Defaults to `0.1`.
        patience: Early-stopping patience in epochs. Defaults to `10`.
        seed: Seeds the weights and the batch order. Defaults to `0`.
        device: cpu, cuda, mps or auto. Defaults to `"cpu"`.
        verbose: Print progress lines when > 0. Defaults to `0`.

    Example:
        >>> from sklearn.datasets import make_classification
        >>> X, y = make_classification(n_samples=64, random_state=0)
        >>> NeuralClassifier(epochs=2).fit(X, y).predict(X[:3]).shape
        (3,)
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralClassifier:
        """Validate the arguments and the data, build ``model_`` and train it; returns ``self``."""
        import torch.nn.functional as F

        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False)
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "multiclass"):
            raise InvalidTargetError(
                f"`y` is of type {type_of_target(y)!r} but NeuralClassifier expects one label per row; pass a 1-D array of class labels."
            )
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InvalidTargetError(
                f"`y` holds one class only ({self.classes_[0]!r}); a classifier needs at least 2 classes, so check the labels."
            )
        binary = len(self.classes_) == 2
        if binary:
            target = codes.astype(np.float32)[:, None]
            base = (
                (lambda z, t: F.binary_cross_entropy_with_logits(z[:, 0], t, reduction="none"))
                if sample_weight is not None
                else F.binary_cross_entropy_with_logits
            )
        else:
            target = codes.astype(np.int64)
            base = (
                (lambda z, t: F.cross_entropy(z, t.long(), reduction="none"))
                if sample_weight is not None
                else F.cross_entropy
            )
        loss_fn: Callable[..., Any] = base
        if sample_weight is not None:
            w = _check_weights(sample_weight, len(X))
            target = np.column_stack([codes.astype(np.float32), w]).astype(np.float32)
            loss_fn = _weighted(base)
        self._fit_tensors(X, target, 1 if binary else len(self.classes_), loss_fn, codes)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: shape (n,) for two classes, (n, C) otherwise."""
        z = self._logits(X)
        return z[:, 0] if len(self.classes_) == 2 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        z = self._logits(X)
        if len(self.classes_) == 2:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), 1e-300, None))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class NeuralRegressor(RegressorMixin, _NeuralBase):
    """A neural-network regressor (dlpipe's MLP, trained by dlpipe's engine) with scikit-learn's API.

    Targets are standardised for training (mean/std of ``y``) and mapped back in :meth:`predict`;
    ``y`` may have several columns. Arguments are those of :class:`NeuralClassifier`.

    Example:
        >>> from sklearn.datasets import make_regression
        >>> X, y = make_regression(n_samples=64, n_features=4, random_state=0)
        >>> NeuralRegressor(epochs=2).fit(X, y).predict(X[:3]).shape
        (3,)
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralRegressor:
        """Validate the arguments and the data, build ``model_`` and train it; returns ``self``."""
        import torch.nn.functional as F

        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True, multi_output=True)
        y2 = np.asarray(y, dtype=np.float64)
        self._single_output = y2.ndim == 1
        y2 = y2.reshape(len(y2), -1)
        self.y_mean_ = y2.mean(axis=0)
        std = y2.std(axis=0)
        self.y_std_ = np.where(std > 1e-12, std, 1.0)
        target = ((y2 - self.y_mean_) / self.y_std_).astype(np.float32)
        k = target.shape[1]
        loss_fn: Callable[..., Any] = F.mse_loss
        if sample_weight is not None:
            w = _check_weights(sample_weight, len(X))

            def loss_fn(z: Any, t: Any) -> Any:
                per_row = ((z - t[:, :k]) ** 2).mean(dim=1)
                return (per_row * t[:, k]).sum() / t[:, k].sum().clamp_min(1e-12)

            target = np.column_stack([target, w]).astype(np.float32)
        self._fit_tensors(X, target, k, loss_fn, None)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values in the target's units: shape (n,) for one target, (n, k) for several."""
        out = self._logits(X) * self.y_std_ + self.y_mean_
        return out[:, 0] if self._single_output else out


def _check_weights(sample_weight: Any, n: int) -> np.ndarray:
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape[0] != n:
        raise InvalidTargetError(
            f"`sample_weight` has {w.shape[0]} values but X has {n} rows; pass one weight per row."
        )
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise InvalidTargetError(
            "`sample_weight` holds negative or non-finite values; pass finite weights >= 0."
        )
    if w.sum() <= 0:
        raise InvalidTargetError(
            "`sample_weight` is zero for every row; at least one row needs a positive weight."
        )
    return w.astype(np.float32)
