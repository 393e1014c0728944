"""Rule figure15: copy fraction, held-out digit fraction and C_T of generated samples against
decoder size, by depth, with seed intervals."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.common import dataset_name, figure_paths, save_figure
from vae_novelty.figures.figure15 import figure15_from_files
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
with dataset_name(p.dataset):
    fig = figure15_from_files(
        sm.input.by_config,
        sm.input.summary,
        p.digits,
        level=p.level,
        n_resamples=p.bootstrap,
        seed=p.seed,
    )
save_figure(fig, figure_paths(sm.output), p.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "figure 15: held-out digits %s, %s interval over seeds (%d resamples) -> %s",
    list(p.digits),
    p.level,
    p.bootstrap,
    figure_paths(sm.output),
)
