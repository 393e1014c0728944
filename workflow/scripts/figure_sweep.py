"""Rules figure4..figure13: the architecture sweep for one held-out digit."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.build import sweep_from_files
from vae_novelty.figures.common import dataset_name, save_figure
from vae_novelty.io import setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = sweep_from_files(sm.input.tables, sm.input.arrays, p.digit, p.test_image)
save_figure(fig, sm.output, p.dpi)
log.info("sweep figure: held-out digit %d, test image position %d, %d architectures -> %s",
         p.digit, p.test_image, len(sm.input.tables), list(sm.output))
