"""Rule figure2: BCE(x, x_hat) against BCE(mu, x_hat) for the shallow and deep VAEs."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.build import figure2_from_files
from vae_novelty.figures.common import dataset_name, figure_paths, save_figure
from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = figure2_from_files(
        p.models, sm.input.tables, p.digit, p.bce_max, p.bins, data=read_fingerprint(sm.input.mnist)
    )
save_figure(fig, figure_paths(sm.output), p.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "figure 2: digit %d, axes 0..%g, %d bins -> %s",
    p.digit,
    p.bce_max,
    p.bins,
    figure_paths(sm.output),
)
