"""Rule run_record: the configuration, data and code a completed run's results were made with."""

import _bootstrap  # noqa: F401

from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.run_record import build_record, model_records, settings_records, write_record

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
config, data = dict(sm.params.config), read_fingerprint(sm.input.mnist)
# what the model files themselves record, each checked against this configuration and data
models = model_records([p for p in sm.input.targets if p.endswith(".pt")], config, data)
# what the figures and tables record, each checked against this configuration's settings
settings = settings_records(sm.input.settings, dict(sm.params.settings))
record = build_record(config, data, models, settings, outputs=len(sm.input.targets))
write_record(record, sm.output[0])
log.info(
    "run record of %d outputs, data %s -> %s", len(sm.input.targets), record["data"], sm.output[0]
)
