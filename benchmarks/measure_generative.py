"""Acceptance measurements of issue 8 (autoencoders, VAEs, GANs), too long for the test suite.

    .venv/bin/python benchmarks/measure_generative.py [anomaly] [embed] [vae] [gan] [mnist] --out runs/measure_generative

- anomaly: breast_cancer, autoencoder trained on benign rows of a stratified 70% split only, scored on
  the other 30%: ROC-AUC (malignant = anomaly) beside PCA reconstruction error and IsolationForest.
- embed: digits table and digits images, latent 2, every other setting default: kNN accuracy (k=5)
  on the codes of the test split, beside PCA(2) and the raw inputs.
- vae / gan: digits images; a dlpipe MLP classifier trained on the real digits table labels 1,000
  generated samples: mean top-class probability and the share of each class (mode collapse check).
- mnist (or mnist-vae / mnist-gan): the same for a VAE and a GAN on the first --mnist-limit MNIST
  training images (../shared/data/mnist), judged by the default dlpipe CNN trained on 20,000 real ones.
Prints one JSON object; sample grids are written under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import dlpipe as dl  # noqa: E402
from dlpipe.data.arrays import load_digits_images, load_mnist  # noqa: E402
from dlpipe.pipeline.generative import sample, save_image_grid, score_anomalies  # noqa: E402


def anomaly(out: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    frame = dl.datasets.load("breast_cancer").frame
    rows = []
    for seed in seeds:
        tr, te = train_test_split(frame, test_size=0.3, stratify=frame["target"], random_state=seed)
        benign = tr[tr["target"] == "benign"]
        t0 = time.perf_counter()
        run = dl.train(
            benign,
            "target",
            task="reconstruction",
            model={"family": "autoencoder", "latent": 8},
            test_fraction=0.0,
            seed=seed,
            progress="quiet",
            out=out / f"anomaly-{seed}",
        )
        _, summary = score_anomalies(run.path / "bundle", te)
        y = (te["target"] == "malignant").to_numpy()
        feats = [c for c in frame.columns if c != "target"]
        sc = StandardScaler().fit(benign[feats])
        a, b = sc.transform(benign[feats]), sc.transform(te[feats])
        pca = PCA(8, random_state=0).fit(a)
        pca_err = ((pca.inverse_transform(pca.transform(b)) - b) ** 2).mean(axis=1)
        iso = -IsolationForest(random_state=seed).fit(a).score_samples(b)
        rows.append(
            {
                "seed": seed,
                "roc_auc": summary["roc_auc"],
                "precision": summary["precision"],
                "recall": summary["recall"],
                "pca8_roc_auc": float(roc_auc_score(y, pca_err)),
                "isolation_forest_roc_auc": float(roc_auc_score(y, iso)),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    return {
        "runs": rows,
        "mean_roc_auc": float(np.mean([r["roc_auc"] for r in rows])),
        "min_roc_auc": float(min(r["roc_auc"] for r in rows)),
    }


def embed(out: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """Latent 2 with every other setting at its default: the digits table (dense autoencoder) and the
    digits images (convolutional autoencoder); kNN (k=5) on the test split's codes, beside PCA(2)."""
    res: dict = {"table_default": [], "images_default": []}
    for seed in seeds:
        t0 = time.perf_counter()
        run = dl.train(
            "digits",
            task="reconstruction",
            model={"family": "autoencoder", "latent": 2},
            seed=seed,
            progress="quiet",
            out=out / f"embed-table-{seed}",
        )
        e = run.metrics["embedding"]
        res["table_default"].append(
            {
                "seed": seed,
                "knn_accuracy": e["knn_accuracy"],
                "pca2_knn_accuracy": e["baselines"]["pca2"]["knn_accuracy"],
                "raw_knn_accuracy": e["baselines"]["raw_inputs"]["knn_accuracy"],
                "epochs": run.metrics["epochs_run"],
                "hidden": run.bundle.manifest["model_spec"]["hidden"],
                "plot": str(run.path / "plots" / "embeddings_pca.png"),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    for seed in seeds[:2]:
        t0 = time.perf_counter()
        run = dl.train(
            load_digits_images(),
            task="reconstruction",
            model={"family": "autoencoder", "latent": 2},
            seed=seed,
            progress="quiet",
            out=out / f"embed-images-{seed}",
        )
        e = run.metrics["embedding"]
        res["images_default"].append(
            {
                "seed": seed,
                "knn_accuracy": e["knn_accuracy"],
                "pca2_knn_accuracy": e["baselines"]["pca2"]["knn_accuracy"],
                "epochs": run.metrics["epochs_run"],
                "dense": run.bundle.manifest["model_spec"].get("dense"),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    return res


def _classifier(out: Path):
    run = dl.train("digits", epochs=100, progress="quiet", out=out / "digits-classifier")
    return run.bundle, float(run.metrics["test"]["model"]["accuracy"])


def _judge(clf, images: np.ndarray) -> dict:
    import pandas as pd

    cols = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    pred = clf.predict(pd.DataFrame(images.reshape(len(images), 64) * 16.0, columns=cols))
    proba = pred[[c for c in pred.columns if c.startswith("proba_")]].to_numpy()
    shares = np.bincount(proba.argmax(axis=1), minlength=10) / len(proba)
    return {
        "mean_top_probability": float(proba.max(axis=1).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "min_class_share": float(shares.min()),
    }


def generate(out: Path, family: str, epochs: int) -> dict:
    clf, clf_acc = _classifier(out)
    t0 = time.perf_counter()
    run = dl.train(
        load_digits_images(),
        task="generate",
        model={"family": family, "latent": 32 if family == "gan" else 8},
        epochs=epochs,
        progress="quiet",
        out=out / f"digits-{family}",
    )
    seconds = round(time.perf_counter() - t0, 1)
    x = sample(run.path / "bundle", 1000, seed=123)
    grid = save_image_grid(x[:64], out / f"digits-{family}-samples.png")
    real = load_digits_images()
    return {
        "family": family,
        "epochs": run.metrics["epochs_run"],
        "seconds": seconds,
        "classifier_test_accuracy": clf_acc,
        "generated": _judge(clf, x),
        "real_digits_reference": _judge(clf, real.x[:1000]),
        "grid": str(grid),
        "generation": run.metrics["generation"],
        "stopped_reason": run.metrics.get("stopped_reason"),
    }


def _mnist_classifier(folder: Path, out: Path, n: int = 20000, epochs: int = 3):
    """The default dlpipe CNN on the first ``n`` real MNIST training images: the judge of the samples."""
    from dlpipe.data.arrays import read_idx
    from dlpipe.data.images import load_images

    x, y = (
        read_idx(folder / "train-images-idx3-ubyte.gz"),
        read_idx(folder / "train-labels-idx1-ubyte.gz"),
    )
    run = dl.train(
        load_images((x[:n, None], y[:n]), name="mnist-classifier"),
        epochs=epochs,
        progress="quiet",
        out=out / "mnist-classifier",
    )
    return run.bundle, float(run.metrics["test"]["model"]["accuracy"])


def _judge_mnist(clf, images: np.ndarray) -> dict:
    pred = clf.predict(
        np.asarray(images, np.float32).reshape(-1, 1, 28, 28) * 255.0
    )  # the classifier trained on raw 0..255 pixels
    proba = pred[[c for c in pred.columns if str(c).startswith("proba_")]].to_numpy()
    shares = np.bincount(proba.argmax(axis=1), minlength=10) / len(proba)
    return {
        "mean_top_probability": float(proba.max(axis=1).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "min_class_share": float(shares.min()),
    }


def mnist(
    out: Path,
    families: tuple[str, ...] = ("vae", "gan"),
    limit: int = 20000,
    vae_epochs: int = 30,
    gan_epochs: int = 25,
) -> dict:
    """VAE and GAN on the first ``limit`` MNIST training images, judged like the digits ones."""
    import os

    folder = REPO.parent / "shared" / "data" / "mnist"
    if not folder.is_dir():
        return {"skipped": f"{folder} is absent"}
    res: dict = {"load_average_start": [round(v, 2) for v in os.getloadavg()], "limit": limit}
    t0 = time.perf_counter()
    clf, acc = _mnist_classifier(folder, out)
    real = load_mnist(folder, "t10k", limit=1000)
    res["classifier"] = {
        "test_accuracy": acc,
        "seconds": round(time.perf_counter() - t0, 1),
        "real_test_images": _judge_mnist(clf, real.x),
    }
    ds = load_mnist(folder, "train", limit=limit)
    for family in families:
        t0 = time.perf_counter()
        model = {"family": family, "latent": 16 if family == "vae" else 32}
        run = dl.train(
            ds,
            task="generate",
            model=model,
            epochs=vae_epochs if family == "vae" else gan_epochs,
            progress="quiet",
            out=out / f"mnist-{family}",
        )
        seconds = round(time.perf_counter() - t0, 1)
        x = sample(run.path / "bundle", 1000, seed=123)
        grid = save_image_grid(x[:64], out / f"mnist-{family}-samples.png")
        res[family] = {
            "epochs": run.metrics["epochs_run"],
            "seconds": seconds,
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
            "generated": _judge_mnist(clf, x),
            "grid": str(grid),
            "generation": run.metrics["generation"],
            "model_spec": {
                k: v for k, v in run.bundle.manifest["model_spec"].items() if k != "family"
            },
            "stopped_reason": run.metrics.get("stopped_reason"),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=["anomaly", "embed", "vae", "gan"])
    ap.add_argument("--out", default="runs/measure_generative")
    ap.add_argument("--vae-epochs", type=int, default=200)
    ap.add_argument("--gan-epochs", type=int, default=250)
    ap.add_argument("--mnist-limit", type=int, default=20000)
    ap.add_argument("--mnist-vae-epochs", type=int, default=30)
    ap.add_argument("--mnist-gan-epochs", type=int, default=25)
    args = ap.parse_args()
    out = Path(args.out)
    warnings.simplefilter("ignore")
    results: dict = {}
    for part in args.parts:
        t0 = time.perf_counter()
        if part == "anomaly":
            results[part] = anomaly(out)
        elif part == "embed":
            results[part] = embed(out)
        elif part in ("vae", "gan"):
            results[part] = generate(
                out, part, args.vae_epochs if part == "vae" else args.gan_epochs
            )
        elif part in ("mnist", "mnist-vae", "mnist-gan"):
            fams = ("vae", "gan") if part == "mnist" else (part.split("-")[1],)
            results[part] = mnist(
                out, fams, args.mnist_limit, args.mnist_vae_epochs, args.mnist_gan_epochs
            )
        results[part]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({part: results[part]}, indent=1), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
