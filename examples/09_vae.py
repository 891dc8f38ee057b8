"""A variational autoencoder that draws new handwritten digits (dlpipe's API).

Data: scikit-learn's 1,797 handwritten digits (8x8 pixels, scaled to [0, 1]).

What it shows: `dl.train(..., task="generate", model={"family": "vae"})` trains a VAE — an encoder
that outputs a mean and a log-variance per latent unit, a sample through the reparameterisation
trick, a decoder, and the loss reconstruction + beta x KL with beta raised from 0 to 1 over the
first epochs (`kl_anneal`, against posterior collapse). Then `sample` decodes random latent vectors
into new digits, saved as a PNG grid, and the run scores them: the mean distance of each sample to
its nearest training image, beside independent per-pixel noise (what a model that learnt nothing
gives) and real held-out images (the floor).

    python examples/09_vae.py           # 100 epochs
    python examples/09_vae.py --quick   # 3 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 0, 100 epochs, best at 85): the samples lie 1.20 from their nearest training image,
against 1.99 for per-pixel noise and 1.10 for real held-out digits (quick run: 1.56).
"""

import os
import sys
from pathlib import Path

import dlpipe as dl
from dlpipe.data.arrays import load_digits_images
from dlpipe.pipeline.generative import sample, save_image_grid

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
out = Path("examples-output")

run = dl.train(
    load_digits_images(),  # images (1797, 1, 8, 8) in [0, 1] with their labels 0-9
    task="generate",
    model={"family": "vae", "latent": 8, "kl_anneal": 2 if quick else 10},
    epochs=3 if quick else 100,
    seed=0,
    out=out / "vae_run",
    overwrite=True,
    progress="quiet",
    report=not quick,  # the HTML report draws plots for seconds: left out of the quick run
)

# New digits: decode 64 latent vectors drawn from the prior N(0, I).
images = sample(run.path / "bundle", 64, seed=0)  # (64, 1, 8, 8), pixels in [0, 1]
grid = save_image_grid(images, out / "vae_samples.png", ncol=8)
print(f"samples: {images.shape} -> {grid}")

generation = run.metrics["generation"]
print(f"nearest-training-image distance of the samples: {generation['model']:.3f}")
print(f"... of independent per-pixel noise: {generation['independent_noise']:.3f}")
print(f"... of real held-out images (the floor): {generation['held_out_rows']:.3f}")
print(f"run folder: {run.path} (metrics.json, bundle/, and report.html on a full run)")
