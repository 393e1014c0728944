"""Rule theorem1: Theorem 1 quantities of one model on its evaluation test images."""

import _bootstrap  # noqa: F401

from vae_novelty.io import describe_device
from vae_novelty.jobs import start_model_job
from vae_novelty.theorem1 import evaluate_model, write_result

sm = snakemake  # noqa: F821
p = sm.params
log, device, spec = start_model_job(sm)
log.info("model %s: top_k=%d chunk_mb=%s on %s", spec.model_id, p.top_k, p.chunk_mb,
         describe_device(device))
result = evaluate_model(sm.input.posteriors, sm.input.model, sm.input.data, spec,
                        top_k=p.top_k, chunk_mb=p.chunk_mb, device=device)
write_result(result, sm.output.table, sm.output.images)
log.info("%d training posteriors; chunks (test, train) = %s", result.meta["n_train"],
         tuple(result.meta["chunks"]))
df = result.table.to_pandas()
log.info("wrote %d test images to %s and %s; median perplexity %.3f, median BCE(x, x_hat) "
         "%.2f, median BCE(mu, x_hat) %.2f", len(df), sm.output.table, sm.output.images,
         df.perplexity.median(), df.bce_x_xhat.median(), df.bce_mu_xhat.median())
log.info("memorisation: median nn_ratio %.3f; x_hat closer (BCE) to a training image than to "
         "its input for %.3f of the test images", df.nn_ratio.median(),
         (df.xhat_nn_bce < df.bce_x_xhat).mean())
