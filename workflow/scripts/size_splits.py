"""Rule size_splits: the size sweep's nested subsets of two disjoint halves, and its test set."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist
from vae_novelty.io import setup_logging
from vae_novelty.size_splits import make_size_splits
from vae_novelty.splits import save_split

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params.settings
mnist = load_mnist(Path(sm.input[0]))
splits = make_size_splits(
    mnist.train_labels,
    mnist.test_labels,
    p["sizes"],
    seed=p["seed"],
    eval_per_digit=p["eval_per_digit"],
    eval_seed=p["eval_seed"],
    data=mnist.fingerprint,
)
for path in sm.output:
    split = splits[Path(path).stem]
    save_split(split, Path(path))
    log.info(
        "split %s: %d training images, %d test images",
        split.name,
        len(split.train_idx),
        len(split.test_idx),
    )
