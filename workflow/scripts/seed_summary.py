"""Rule seed_summary: summary.csv over seeds, one row per (arch, split) with bootstrap
intervals (results/tables/summary_by_config.csv), and the same as an HTML page for the report."""

import _bootstrap  # noqa: F401

import pandas as pd

from vae_novelty.figures.common import save_text
from vae_novelty.figures.summary import summary_html
from vae_novelty.io import atomic_path, setup_logging
from vae_novelty.recorded import write_settings
from vae_novelty.seeds import display_table, statistic_columns, summarise_seeds

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
summary = pd.read_csv(sm.input.summary)
table = summarise_seeds(
    summary, n_resamples=p.bootstrap, level=p.level, seed=p.seed, source=str(sm.input.summary)
)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
save_text(sm.output.page, summary_html(display_table(table), p.title, p.note))
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "seed summary: %d models -> %d configurations (seeds per configuration: %s), "
    "%d statistics, %d resamples, level %g -> %s, %s",
    len(summary),
    len(table),
    sorted(set(table["n_seeds"])),
    len(statistic_columns(summary)),
    p.bootstrap,
    p.level,
    sm.output.table,
    sm.output.page,
)
