"""Rule figure_quant: Figure 4 as a measurement (fraction closer to mu, median perplexity)."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.common import dataset_name, save_figure
from vae_novelty.figures.quant import quant_from_files
from vae_novelty.io import setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = quant_from_files(sm.input.by_config, sm.input.summary, p.digits, level=p.level,
                           n_resamples=p.bootstrap, seed=p.seed)
save_figure(fig, sm.output, p.dpi)
log.info("quantitative sweep figure: held-out digits %s, %s interval over seeds (%d "
         "resamples) -> %s", list(p.digits), p.level, p.bootstrap, list(sm.output))
