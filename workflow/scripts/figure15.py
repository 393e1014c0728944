"""Rule figure15: copy fraction, held-out digit fraction and C_T of generated samples against
decoder size, by depth, with seed intervals."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.common import dataset_name, save_figure
from vae_novelty.figures.figure15 import figure15_from_files
from vae_novelty.io import setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = figure15_from_files(sm.input.by_config, sm.input.summary, p.digits, level=p.level,
                              n_resamples=p.bootstrap, seed=p.seed)
save_figure(fig, sm.output, p.dpi)
log.info("figure 15: held-out digits %s, %s interval over seeds (%d resamples) -> %s",
         list(p.digits), p.level, p.bootstrap, list(sm.output))
