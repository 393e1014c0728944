"""Rule figure3: the mini-MNIST latent space (max weight map, aggregate posterior, samples)."""

import _bootstrap  # noqa: F401

import numpy as np
import torch

from vae_novelty.figures.build import figure3_from_files
from vae_novelty.figures.common import dataset_name, figure_paths, save_figure
from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
torch.set_num_threads(sm.threads)
with dataset_name(p.dataset):
    fig, data = figure3_from_files(
        sm.input.posteriors,
        sm.input.model,
        p.hidden,
        p.z_dim,
        p.grid_size,
        p.extent,
        p.cmap,
        p.samples_per_digit,
        p.sample_seed,
        model_id=p.model_id,
        data=read_fingerprint(sm.input.mnist),
    )
save_figure(fig, figure_paths(sm.output), p.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "figure 3: %d x %d grid over [-%g, %g]^2, %d sampled z; max weight on the grid: "
    "median %.3f, %.1f%% of points above 0.99 -> %s",
    p.grid_size,
    p.grid_size,
    p.extent,
    p.extent,
    len(data.samples.z),
    float(np.median(data.max_w)),
    100 * float((data.max_w > 0.99).mean()),
    figure_paths(sm.output),
)
