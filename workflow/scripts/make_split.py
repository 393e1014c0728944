"""Rule make_split: one training split and its evaluation set, as MNIST row indices."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist
from vae_novelty.splits import make_split, save_split
from vae_novelty.io import setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = dict(sm.params.settings)
mnist = load_mnist(Path(sm.input[0]))
eval_digits = p.pop("eval_digits")
split = make_split(
    sm.wildcards.split,
    mnist.train_labels,
    mnist.test_labels,
    eval_digits,
    data=mnist.fingerprint,
    **p,
)
log.info(
    "split %s: %d training images, %d evaluation test images (digits %s), data %s",
    split.name,
    len(split.train_idx),
    len(split.test_idx),
    eval_digits,
    split.data,
)
save_split(split, Path(sm.output[0]))
