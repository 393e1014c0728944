"""Rule optimal_elbo: test ELBO of one model with its decoder and with the optimal decoder."""

import _bootstrap  # noqa: F401

from vae_novelty.elbo import evaluate_elbo, write_table
from vae_novelty.io import describe_device
from vae_novelty.jobs import start_model_job

sm = snakemake  # noqa: F821
p = sm.params
log, device, spec = start_model_job(sm)
log.info("model %s: %d samples per test image, eps=%g, seed=%d, chunk_mb=%s on %s",
         spec.model_id, p.samples, p.eps, p.sample_seed, p.chunk_mb, describe_device(device))
table = evaluate_elbo(sm.input.posteriors, sm.input.model, sm.input.data, spec,
                      samples=p.samples, clamp_eps=p.eps, seed=p.sample_seed,
                      chunk_mb=p.chunk_mb, device=device)
write_table(table, sm.output.table)
df = table.to_pandas()
gap = df.elbo_optimal - df.elbo_decoder
log.info("wrote %d test images to %s: mean ELBO decoder %.2f, optimal %.2f, median gap %.2f; "
         "clamp active on %.4f of the optimal decoder's means", len(df), sm.output.table,
         df.elbo_decoder.mean(), df.elbo_optimal.mean(), gap.median(),
         df.clamped_fraction.mean())
