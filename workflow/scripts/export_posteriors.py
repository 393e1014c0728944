"""Rule export_posteriors: write one model's posteriors (mean, log-variance) to Parquet."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist, load_split
from vae_novelty.io import describe_device, select_device, setup_logging
from vae_novelty.posterior import export_model

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
device = select_device(p.device)
table = export_model(sm.input.model, load_mnist(Path(sm.input.data)),
                     load_split(Path(sm.input.split)), sm.output[0], hidden=p.hidden,
                     z_dim=p.z_dim, device=device)
log.info("wrote %d posteriors (dim(z)=%d) on %s to %s", table.num_rows, p.z_dim,
         describe_device(device), sm.output[0])
