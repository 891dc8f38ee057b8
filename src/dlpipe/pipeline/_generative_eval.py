"""Evaluation of generative models beside baselines, and their pictures (PNG bytes for the run folder).

- reconstruction error on the test split: the model, a constant "mean" row and PCA with as many
  components as the latent (the linear autoencoder);
- anomaly detection when labels exist: ROC-AUC of the score, and precision/recall at the threshold
  (the 99th percentile of the training errors), beside PCA's reconstruction error;
- embeddings: kNN accuracy on the codes beside kNN on PCA codes of the same width;
- generation: the distance of samples to their nearest training row, beside independent per-feature
  Gaussian noise and beside real held-out rows.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlpipe.tasks.generative import per_sample_error

if TYPE_CHECKING:
    from dlpipe.pipeline._fit_generative import Prepared

__all__ = [
    "errors_of",
    "embed_array",
    "sample_array",
    "to_data_space",
    "image_grid_png",
    "evaluate_generative",
    "threshold_from",
]

_CHUNK = 4096
_EPS = 1e-4


def _chunks(x: np.ndarray) -> list[torch.Tensor]:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return [t[s : s + _CHUNK] for s in range(0, max(len(t), 1), _CHUNK)]


def reconstruct(model: nn.Module, gen: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Raw decoder output (logits or values), shape (N, D)."""
    from dlpipe.models.vae import split_vae_output

    model.eval()
    outs = []
    with torch.inference_mode():
        for xb in _chunks(x):
            out = model(xb)
            if gen["model"] == "vae":
                out = split_vae_output(out, gen["latent"])[0]
            outs.append(out.reshape(len(xb), -1))
    return torch.cat(outs).numpy()


def errors_of(model: nn.Module, gen: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Reconstruction error per row / image / window (the anomaly score)."""
    recon = torch.from_numpy(reconstruct(model, gen, x))
    return per_sample_error(
        recon, torch.from_numpy(np.asarray(x, np.float32)).reshape(len(x), -1), gen["loss"]
    ).numpy()


def embed_array(model: nn.Module, gen: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The encoder's output (the VAE's posterior mean), shape (N, L)."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model.encode(xb) for xb in _chunks(x)]).numpy()  # type: ignore[operator]


def to_data_space(gen: dict[str, Any], out: np.ndarray) -> np.ndarray:
    if gen["output"] == "logits":
        return 1.0 / (1.0 + np.exp(-out))
    if gen["output"] == "tanh":
        return (out + 1.0) / 2.0
    return out


def sample_array(
    model: nn.Module, gen: dict[str, Any], n: int, seed: int = 0, temperature: float = 1.0
) -> np.ndarray:
    """``n`` new samples in data space (images in [0, 1], table rows in the scaled feature space)."""
    z = torch.randn(n, gen["latent"], generator=torch.Generator().manual_seed(seed)) * temperature
    model.eval()
    with torch.inference_mode():
        out = model.decode(z) if gen["model"] == "vae" else model(z)  # type: ignore[operator]
    return to_data_space(gen, out.numpy())


def interpolate(
    model: nn.Module, gen: dict[str, Any], x_a: np.ndarray, x_b: np.ndarray, steps: int = 8
) -> np.ndarray:
    """Decode evenly spaced points on the segment between the codes of ``x_a`` and ``x_b`` (rows paired)."""
    za, zb = embed_array(model, gen, x_a), embed_array(model, gen, x_b)
    t = np.linspace(0, 1, steps, dtype=np.float32)[None, :, None]
    z = torch.from_numpy((za[:, None] * (1 - t) + zb[:, None] * t).reshape(-1, za.shape[1]))
    with torch.inference_mode():
        out = model.decode(z)  # type: ignore[operator]
    return to_data_space(gen, out.numpy())


def threshold_from(
    quantiles: list[float], *, contamination: float | None = None, percentile: float | None = None
) -> float:
    """A threshold on the score from the training errors' quantiles (0.1% steps)."""
    q = np.asarray(quantiles, dtype=np.float64)
    pct = (
        100.0 * (1.0 - contamination)
        if contamination is not None
        else (percentile if percentile is not None else 99.0)
    )
    return float(np.interp(pct, np.linspace(0, 100, len(q)), q))


# ---------------------------------------------------------------------- pictures
def image_grid_png(images: np.ndarray, ncol: int | None = None, scale: int = 0) -> bytes:
    """Images (N, C, H, W) with values in [0, 1] -> one PNG grid (nearest-neighbour upscaled when small)."""
    from PIL import Image

    imgs = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    n, c, h, w = imgs.shape
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    grid = np.ones((c, nrow * (h + 1) + 1, ncol * (w + 1) + 1), np.float32)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = (
            imgs[i]
        )
    arr = (grid * 255).round().astype(np.uint8)
    pil = Image.fromarray(arr[0] if c == 1 else arr[:3].transpose(1, 2, 0))
    scale = scale or max(
        1, 640 // max(grid.shape[1:])
    )  # about 640 px across, so 8x8 digits stay readable
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _figure_png(fig: Any) -> bytes:
    """PNG bytes with mathtext off: class labels from the data (``$a$``) are drawn as typed, never parsed as TeX."""
    import matplotlib
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buf = io.BytesIO()
    with matplotlib.rc_context({"text.parse_math": False}):
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def scatter_png(points: np.ndarray, labels: np.ndarray | None, title: str) -> bytes:
    """A 2-D projection coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6)
    else:
        for lab in sorted(set(labels.tolist()), key=str):
            m = labels == lab
            ax.scatter(points[m, 0], points[m, 1], s=6, label=str(lab))
        ax.legend(markerscale=2, fontsize=7, loc="best")
    ax.set_title(title)
    return _figure_png(fig)


def histogram_png(scores: np.ndarray, labels: np.ndarray | None, threshold: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(scores, bins=40).tolist()
    if labels is None:
        ax.hist(scores, bins=bins)
    else:
        for lab in sorted(set(labels.tolist()), key=str):
            ax.hist(scores[labels == lab], bins=bins, alpha=0.6, label=str(lab))
        ax.legend()
    ax.axvline(threshold, color="k", linestyle="--", label="threshold")
    ax.set_xlabel("reconstruction error")
    ax.set_title("anomaly scores on the test split")
    return _figure_png(fig)


# ---------------------------------------------------------------------- numbers
def anomaly_positives(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, str]:
    """Which test rows count as anomalies: labels never seen in training (trained on normal rows
    only), else the rarest training label."""
    seen = set(np.asarray(y_train).tolist())
    unseen = [v for v in set(np.asarray(y_test).tolist()) if v not in seen]
    if unseen:
        return np.isin(
            y_test, unseen
        ), f"labels not seen in training: {', '.join(map(str, sorted(unseen, key=str)))}"
    values, counts = np.unique(y_train, return_counts=True)
    rare = values[np.argmin(counts)]
    return np.asarray(y_test) == rare, f"the rarest training label: {rare}"


def _baseline_recon(
    x_train: np.ndarray, x_test: np.ndarray, n_components: int, loss: str
) -> dict[str, np.ndarray]:
    from sklearn.decomposition import PCA

    a, b = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    k = max(1, min(n_components, a.shape[1], len(a)))
    pca = PCA(n_components=k, random_state=0).fit(a)
    recon = {
        "mean": np.broadcast_to(a.mean(axis=0), b.shape),
        "pca": pca.inverse_transform(pca.transform(b)),
    }
    if (
        loss == "bce"
    ):  # the model outputs logits; put the baselines' probabilities on the same footing
        recon = {
            k2: np.log(np.clip(v, _EPS, 1 - _EPS) / (1 - np.clip(v, _EPS, 1 - _EPS)))
            for k2, v in recon.items()
        }
    return recon


def _err(recon: np.ndarray, x: np.ndarray, loss: str) -> np.ndarray:
    return per_sample_error(
        torch.from_numpy(np.ascontiguousarray(recon, dtype=np.float32)),
        torch.from_numpy(x.reshape(len(x), -1)),
        loss,  # type: ignore[arg-type]
    ).numpy()


def _knn(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=5).fit(train, y_train).score(test, y_test))


def evaluate_generative(
    model: nn.Module, gen: dict[str, Any], prep: Prepared, seed: int
) -> tuple[dict[str, Any], dict[str, bytes]]:
    from sklearn.decomposition import PCA
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    files: dict[str, bytes] = {}
    out: dict[str, Any] = {"_bundle": {}}
    part = (
        "test" if len(prep.x["test"]) else "val"
    )  # test_fraction=0: every row trains or validates
    out["evaluated_on"] = part
    x_tr, x_te, x_va = prep.x["train"], prep.x[part], prep.x["val"]
    y_tr, y_te = prep.y["train"], prep.y[part]
    flat_tr, flat_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    is_image = gen["input"] == "image"
    if gen["model"] != "gan":
        err_tr, err_te = errors_of(model, gen, x_tr), errors_of(model, gen, x_te)
        # The threshold comes from normal rows the model did not fit (validation) when there are
        # enough: training errors are optimistically small, so a threshold on them over-flags.
        err_ref, ref_name = (
            (errors_of(model, gen, x_va), "validation") if len(x_va) >= 20 else (err_tr, "training")
        )
        quantiles = np.quantile(err_ref, np.linspace(0, 1, 1001)).tolist()
        threshold = threshold_from(quantiles, percentile=99.0)
        out["_bundle"].update(
            error_quantiles=quantiles,
            threshold=threshold,
            threshold_percentile=99.0,
            threshold_from=f"{ref_name} errors",
        )
        base = {
            k: _err(v, x_te, gen["loss"])
            for k, v in _baseline_recon(x_tr, x_te, gen["latent"], gen["loss"]).items()
        }
        model_err = float(err_te.mean())
        base_err = {k: float(v.mean()) for k, v in base.items()}
        best = min(base_err, key=lambda k: base_err[k])
        verdict = (
            f"the model reconstructs the test split better than every baseline (error {model_err:.4g} vs {best} {base_err[best]:.4g})"
            if model_err < base_err[best]
            else f"the model does NOT beat the {best} baseline on reconstruction error ({model_err:.4g} vs {base_err[best]:.4g})"
        )
        out["test"] = {
            "rows": len(x_te),
            "primary_metric": "reconstruction_error",
            "model": {"reconstruction_error": model_err},
            "baselines": {k: {"reconstruction_error": v} for k, v in base_err.items()},
            "verdict": verdict,
            "threshold": threshold,
            "train_error_mean": float(err_tr.mean()),
        }
        files["plots/anomaly_scores.png"] = histogram_png(err_te, y_te, threshold)
        if y_tr is not None and y_te is not None and len(y_te):
            positive, rule = anomaly_positives(y_tr, y_te)
            if 0 < positive.sum() < len(positive):
                flagged = err_te > threshold
                out["anomaly"] = {
                    "positive": rule,
                    "roc_auc": float(roc_auc_score(positive, err_te)),
                    "threshold": threshold,
                    "threshold_percentile": 99.0,
                    "precision": float(precision_score(positive, flagged, zero_division=0)),
                    "recall": float(recall_score(positive, flagged, zero_division=0)),
                    "flagged": int(flagged.sum()),
                    "baselines": {"pca": {"roc_auc": float(roc_auc_score(positive, base["pca"]))}},
                }
        emb_tr, emb_te = embed_array(model, gen, x_tr), embed_array(model, gen, x_te)
        if len(emb_te) >= 3:
            pts = (
                PCA(n_components=2, random_state=0).fit(emb_tr).transform(emb_te)
                if emb_te.shape[1] > 2
                else emb_te
            )
            files["plots/embeddings_pca.png"] = scatter_png(
                pts,
                y_te,
                f"test embeddings (latent {gen['latent']})"
                + (", 2-D PCA" if emb_te.shape[1] > 2 else ""),
            )
        if (
            y_tr is not None
            and y_te is not None
            and len(y_te)
            and 2 <= len(set(y_tr.tolist())) <= 50
        ):
            k = min(gen["latent"], flat_tr.shape[1], len(flat_tr))
            pca = PCA(n_components=k, random_state=0).fit(flat_tr)
            out["embedding"] = {
                "knn_accuracy": _knn(emb_tr, y_tr, emb_te, y_te),
                "baselines": {
                    f"pca{k}": {
                        "knn_accuracy": _knn(
                            pca.transform(flat_tr), y_tr, pca.transform(flat_te), y_te
                        )
                    },
                    "raw_inputs": {"knn_accuracy": _knn(flat_tr, y_tr, flat_te, y_te)},
                },
            }
        if is_image and len(x_te):
            m = min(16, len(x_te))
            recon = to_data_space(gen, reconstruct(model, gen, x_te[:m])).reshape(x_te[:m].shape)
            files["plots/reconstructions.png"] = image_grid_png(
                np.concatenate([x_te[:m], recon]), ncol=m
            )
    if gen["model"] in ("vae", "gan"):
        n = min(1000, max(len(x_te), 100))
        samples = sample_array(model, gen, n, seed=seed).reshape(n, -1)
        ref = flat_tr
        rng = np.random.default_rng(seed)
        noise = rng.normal(ref.mean(axis=0), ref.std(axis=0) + 1e-8, size=(n, ref.shape[1]))
        if is_image:
            noise = np.clip(noise, 0, 1)
        gen_scores = {
            "model": _nn_distance(samples, ref),
            "independent_noise": _nn_distance(noise, ref),
        }
        if len(flat_te):
            gen_scores["held_out_rows"] = _nn_distance(flat_te, ref)
        out["generation"] = {
            "metric": "mean distance of a sample to its nearest training row (lower is closer to the data; real held-out rows show the floor)",
            **gen_scores,
        }
        if is_image:
            shape = x_tr.shape[1:]
            files["plots/samples.png"] = image_grid_png(samples[:64].reshape(-1, *shape))
            if gen["model"] == "vae" and len(x_te) >= 2:
                pairs = min(6, len(x_te) // 2)
                files["plots/interpolations.png"] = image_grid_png(
                    interpolate(model, gen, x_te[:pairs], x_te[pairs : 2 * pairs]).reshape(
                        -1, *shape
                    ),
                    ncol=8,
                )
        if "test" not in out:
            out["test"] = {
                "rows": len(x_te),
                "primary_metric": "nn_distance",
                "model": {"nn_distance": gen_scores["model"]},
                "baselines": {
                    "independent_noise": {"nn_distance": gen_scores["independent_noise"]}
                },
                "verdict": (
                    "samples are closer to the data than independent per-feature noise"
                    if gen_scores["model"] < gen_scores["independent_noise"]
                    else "samples are NOT closer to the data than independent per-feature noise"
                ),
            }
    return out, files


def _nn_distance(a: np.ndarray, ref: np.ndarray) -> float:
    from sklearn.neighbors import NearestNeighbors

    nn_ = NearestNeighbors(n_neighbors=1).fit(ref)
    return float(nn_.kneighbors(a)[0].mean())
