"""Rule summary_table: the per-model summary as an HTML page for the report."""

import _bootstrap  # noqa: F401

import pandas as pd

from vae_novelty.figures.common import save_text
from vae_novelty.figures.summary import summary_html
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
df = pd.read_csv(sm.input[0])
save_text(sm.output[0], summary_html(df, sm.params.title, sm.params.note))
write_settings(sm.output.settings, sm.rule, sm.params)
log.info("summary table: %d models, %d columns -> %s", len(df), df.shape[1], sm.output[0])
