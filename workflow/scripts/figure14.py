"""Rule figure14: generated samples of the shallow and deep VAEs of Figures 1-2."""

import _bootstrap  # noqa: F401

from vae_novelty.data import read_fingerprint
from vae_novelty.figures.build import figure14_from_files
from vae_novelty.figures.common import dataset_name, figure_paths, save_figure
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = figure14_from_files(
        p.models,
        sm.input.tables,
        sm.input.arrays,
        sm.input.mnist,
        p.n_samples,
        data=read_fingerprint(sm.input.mnist),
    )
save_figure(fig, figure_paths(sm.output), p.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "figure 14: the first %d samples of models %s -> %s",
    p.n_samples,
    [m["model_id"] for m in p.models],
    figure_paths(sm.output),
)
