"""Rule size_evaluate: the size sweep's measures of every model of one architecture."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist
from vae_novelty.jobs import output_for, start_job
from vae_novelty.size_eval import SizeEvalSettings, evaluate_architecture, write_outputs
from vae_novelty.splits import load_checked_splits

sm = snakemake  # noqa: F821
p = sm.params.settings
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
settings = SizeEvalSettings(
    samples=p["samples"],
    copy_ratio=p["copy_ratio"],
    elbo_samples=p["elbo_samples"],
    sample_seed=p["sample_seed"],
    chunk_mb=float(sm.resources.chunk_mb),
)
mnist = load_mnist(Path(sm.input.data))
splits = load_checked_splits(sm.input.splits, mnist)
models = [(split, int(seed)) for split, seed in p["models"]]
paths = {
    (split, seed): output_for(sm.input.models, f"{split}_s{seed}.pt") for split, seed in models
}
rows, pairs = evaluate_architecture(
    sm.wildcards.arch, p["hidden"], p["z_dim"], models, paths, splits, mnist, settings, device
)
write_outputs(rows, pairs, sm.output.table, sm.output.agreement)
