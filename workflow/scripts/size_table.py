"""Rule size_table: the size sweep's table (one row per model) and its transition sizes."""

import _bootstrap  # noqa: F401

from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings
from vae_novelty.size_table import write_tables

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
transitions = write_tables(sm.input, sm.output.table, sm.output.transitions, sm.params.threshold)
write_settings(sm.output.settings, sm.rule, sm.params)
for _, row in transitions.iterrows():
    log.info(
        "%s %s: largest N with >= %.0f%%: %s",
        row.arch,
        row.measure,
        100 * row.threshold,
        row.reading,
    )
