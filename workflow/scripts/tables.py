"""Rule tables: concatenated Theorem 1 table, per-model summary, stacked training histories."""

import _bootstrap  # noqa: F401

from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings
from vae_novelty.tables import write_tables

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
summary = write_tables(
    list(sm.input.theorem1),
    list(sm.input.histories),
    sm.params.models,
    table_path=sm.output.table,
    summary_path=sm.output.summary,
    training_path=sm.output.training,
    elbo_paths=list(sm.input.elbo),
    samples_paths=list(sm.input.samples),
    expect_data=read_fingerprint(sm.input.mnist),
)
write_settings(sm.output.settings, sm.rule, sm.params)
log.info(
    "summarised %d models into %s, %s and %s",
    len(summary),
    sm.output.table,
    sm.output.summary,
    sm.output.training,
)
