"""Rule size_figure: every size-sweep measure against N, with the transition sizes."""

import _bootstrap  # noqa: F401

import pandas as pd

from vae_novelty.figures.common import save_figure
from vae_novelty.figures.size import plot_size_sweep
from vae_novelty.io import setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
table = pd.read_csv(sm.input.table)
transitions = pd.read_csv(sm.input.transitions)
fig = plot_size_sweep(table, transitions, roles=sm.params.roles, threshold=sm.params.threshold)
save_figure(fig, sm.output, sm.params.dpi)
log.info("size-sweep figure: %d models -> %s", len(table), list(sm.output))
