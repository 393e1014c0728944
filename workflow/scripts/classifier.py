"""Rule classifier: the digit classifier of the samples stage (src/vae_novelty/classifier.py)."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.classifier import train_and_save
from vae_novelty.data import load_mnist
from vae_novelty.jobs import start_job

sm = snakemake  # noqa: F821
p = sm.params.settings
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
train_and_save(
    load_mnist(Path(sm.input.data)),
    epochs=p["epochs"],
    batch_size=p["batch_size"],
    learning_rate=p["learning_rate"],
    seed=p["seed"],
    max_train_images=p["max_train_images"],
    model_path=sm.output.model,
    json_path=sm.output.record,
    html_path=sm.output.page,
    device=device,
)
