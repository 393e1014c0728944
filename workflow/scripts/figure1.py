"""Rule figure1: shallow and deep VAEs on a held-out digit, with and without it in training."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.build import figure1_from_files
from vae_novelty.figures.common import dataset_name, figure_paths, save_figure
from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = figure1_from_files(
        p.models,
        sm.input.tables,
        sm.input.arrays,
        sm.input.mnist,
        p.digit,
        p.test_images,
        p.hist_bins,
        p.hist_max,
        data=read_fingerprint(sm.input.mnist),
    )
save_figure(fig, figure_paths(sm.output), p.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "figure 1: digit %d, test image positions %s, models %s -> %s",
    p.digit,
    p.test_images,
    [m["title"] + " / " + m["split"] for m in p.models],
    figure_paths(sm.output),
)
