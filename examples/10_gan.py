"""A GAN that learns to draw handwritten digits (dlpipe's API).

Data: scikit-learn's 1,797 handwritten digits (8x8 pixels in [0, 1]).

What it shows: `dl.train(..., task="generate", model={"family": "gan"})` trains a DCGAN-style pair
in the engine's one loop: per batch the discriminator on real images (labels smoothed to 0.9) and
on generated ones, then the generator with the non-saturating loss; Adam with beta1 = 0.5 and
DCGAN's learning rate 2e-4. `history.csv` records `d_loss`, `g_loss`, `d_real` and `d_fake` per
epoch, and the run keeps a grid drawn from one fixed noise vector every few epochs
(`plots/samples_epoch_*.png`), so you can watch the digits form. The bundle holds the generator;
`sample` draws new digits from it.

    python examples/10_gan.py           # 100 epochs
    python examples/10_gan.py --quick   # 2 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 0, 100 epochs, 47 CPU-seconds): the players stay balanced (last epoch d_real 0.46,
d_fake 0.45); samples lie 1.70 from their nearest training image, against 1.99 for per-pixel noise
and 1.10 for real held-out digits: sharper strokes than the VAE's, further from real digits.
"""

import os
import sys
from pathlib import Path

import pandas as pd

import dlpipe as dl
from dlpipe.data.arrays import load_digits_images
from dlpipe.pipeline.generative import sample, save_image_grid

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
out = Path("examples-output")

run = dl.train(
    load_digits_images(),
    task="generate",
    model={"family": "gan", "latent": 32},
    epochs=2 if quick else 100,
    seed=0,
    out=out / "gan_run",
    overwrite=True,
    progress="quiet",
    report=not quick,  # the HTML report draws plots for seconds: left out of the quick run
)

# The two players' losses: neither should win outright (d_loss -> 0 means the generator lost).
history = pd.read_csv(run.path / "history.csv")
columns = ["epoch", "d_loss", "g_loss", "d_real", "d_fake"]
print(history[columns].astype({"epoch": int}).tail(3).round(3).to_string(index=False))

images = sample(run.path / "bundle", 64, seed=0)  # (64, 1, 8, 8) in [0, 1]
print(f"samples: {images.shape} -> {save_image_grid(images, out / 'gan_samples.png', ncol=8)}")
generation = run.metrics["generation"]
print(f"nearest-training-image distance of the samples: {generation['model']:.3f}")
print(f"... of independent per-pixel noise: {generation['independent_noise']:.3f}")
print(f"... of real held-out images (the floor): {generation['held_out_rows']:.3f}")
