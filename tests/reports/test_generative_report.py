"""Reports of reconstruction and generative runs: originals beside reconstructions, anomaly scores by
label, embeddings, and the sample grids of every kept epoch (VAE and GAN), checked in the HTML and
in real headless Chromium."""

from pathlib import Path

import pytest

import dlpipe as dl
from dlpipe.data.arrays import ArrayDataset, load_digits_images
from dlpipe.reports import build_report

from .chromium import Chromium, chromium_path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
QUIET = {"progress": "quiet"}


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory):
    ds = load_digits_images()
    small = ArrayDataset(ds.x[:300], ds.y[:300], name="digits300")
    root = tmp_path_factory.mktemp("generative-runs")
    return {
        "ae": dl.train(
            small,
            task="reconstruction",
            model={"family": "autoencoder", "latent": 2},
            epochs=2,
            out=root / "ae",
            **QUIET,
        ).path,
        "vae": dl.train(
            small,
            task="generate",
            model={"family": "vae", "latent": 4},
            epochs=3,
            out=root / "vae",
            **QUIET,
        ).path,
        "gan": dl.train(
            small,
            task="generate",
            model={"family": "gan", "latent": 8},
            epochs=2,
            out=root / "gan",
            **QUIET,
        ).path,
    }


def _page(path: Path) -> str:
    return (path / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_reconstruction_report_shows_originals_beside_reconstructions_scores_and_embeddings(
    digit_runs,
):
    path = digit_runs["ae"]
    page = _page(path)
    for heading in (">Reconstructions (test split)<", ">Anomaly scores<", ">Embeddings<"):
        assert heading in page
    assert (
        'alt="Originals and their reconstructions"' in page
        and "Top row: images of the test split" in page
    )
    assert 'alt="Anomaly score histogram"' in page and "the dashed line is the threshold" in page
    assert 'alt="Test embeddings"' in page and "kNN (k=5) on" in page
    # each picture once: the generic "More pictures" section does not repeat what a section showed
    assert page.count(
        "data:image/png;base64", page.index('id="pictures-reconstructions"')
    ) == page.count("<img", page.index('id="pictures-reconstructions"'))
    assert 'alt="reconstructions"' not in page and 'alt="anomaly scores"' not in page
    assert ">Samples<" not in page  # an autoencoder does not sample
    build_report(path)  # a rebuild keeps the fitter's pictures (the report never owns them)
    assert (path / "plots" / "reconstructions.png").is_file() and (
        path / "plots" / "anomaly_scores.png"
    ).is_file()
    assert 'alt="Originals and their reconstructions"' in _page(path)


@pytest.mark.slow
def test_vae_and_gan_reports_show_a_sample_grid_per_kept_epoch(digit_runs):
    vae = _page(digit_runs["vae"])
    for epoch in (1, 2, 3):
        assert (digit_runs["vae"] / "plots" / f"samples_epoch_{epoch:04d}.png").is_file()
        assert f'alt="Samples after epoch {epoch}"' in vae
    assert 'alt="Samples from the final model"' in vae and 'alt="Latent interpolations"' in vae
    assert ">Reconstructions (test split)<" in vae  # a VAE also reconstructs
    gan = _page(digit_runs["gan"])
    assert 'alt="Samples after epoch 1"' in gan and 'alt="Samples after epoch 2"' in gan
    assert "mean distance to nearest training row" in gan
    assert (
        ">Reconstructions (test split)<" not in gan and ">Anomaly scores<" not in gan
    )  # a GAN has no encoder
    assert (
        "d_loss" in (digit_runs["gan"] / "history.csv").read_text().splitlines()[0]
    )  # both losses in the history
    assert (
        "Embeddings, anomalies and samples" not in vae + gan
    )  # one set of generative sections, not two


@pytest.mark.slow
def test_table_reconstruction_report_says_grids_are_for_images():
    run = dl.train(
        "breast_cancer",
        task="reconstruction",
        model={"family": "autoencoder", "latent": 4},
        epochs=2,
        save=False,
        **QUIET,
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        page = run.save(Path(tmp) / "run").joinpath("report.html").read_text(encoding="utf-8")
    assert "a grid of reconstructions is drawn for image runs only" in page
    assert (
        "PCA reconstruction error (baseline)" in page
        and "anomalies: the rarest training label" in page
    )


@pytest.mark.service
@pytest.mark.slow
@pytest.mark.skipif(
    chromium_path() is None,
    reason="chromium is not installed; `make services` (scripts/test-services.sh) installs it",
)
def test_generative_reports_open_cleanly_in_chromium(digit_runs):
    with Chromium() as browser:
        for name, min_images in (("ae", 4), ("vae", 8), ("gan", 4)):
            result = browser.inspect(
                digit_runs[name] / "report.html", ARTIFACTS / f"report-generative-{name}.png"
            )
            assert result["console_errors"] == [] and result["exceptions"] == []
            assert result["broken_images"] == [] and result["images"] >= min_images, (
                name,
                result["images"],
            )
            assert result["off_machine"] == [] and result["failed"] == []


def test_a_gan_stopped_by_nan_says_so_in_the_samples_section(digit_runs, tmp_path):
    import json
    import shutil

    from dlpipe.reports.folder import read_run_folder
    from dlpipe.reports.generative import sections

    path = shutil.copytree(digit_runs["gan"], tmp_path / "gan")
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["stopped_reason"] = (
        "the GAN losses became NaN at epoch 3; the generator from epoch 2 was kept."
    )
    (path / "metrics.json").write_text(json.dumps(metrics))
    found = {s.id: s for s in sections(read_run_folder(path)) or []}
    assert ("note", metrics["stopped_reason"]) in found["pictures-samples"].items
    metrics["task"] = "multiclass"
    (path / "metrics.json").write_text(json.dumps(metrics))
    assert sections(read_run_folder(path)) is None  # other tasks get nothing from this provider
