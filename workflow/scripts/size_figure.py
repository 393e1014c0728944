"""Rule size_figure: every size-sweep measure against N, with the transition sizes."""

import _bootstrap  # noqa: F401

import pandas as pd

from vae_novelty.figures.common import figure_paths, save_figure
from vae_novelty.figures.size import plot_size_sweep
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
table = pd.read_csv(sm.input.table)
transitions = pd.read_csv(sm.input.transitions)
fig = plot_size_sweep(table, transitions, roles=sm.params.roles, threshold=sm.params.threshold)
save_figure(fig, figure_paths(sm.output), sm.params.dpi)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info("size-sweep figure: %d models -> %s", len(table), figure_paths(sm.output))
