"""Rule size_check_splits: every size split checked against MNIST and against each other
(disjoint halves, nesting, one test set) before any training job starts."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist
from vae_novelty.io import setup_logging, write_text_atomic
from vae_novelty.size_splits import check_size_splits
from vae_novelty.splits import load_checked_splits

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
mnist = load_mnist(Path(sm.input.data))
splits = load_checked_splits(sm.input.splits, mnist)
check_size_splits(splits, mnist)
lines = ["split\ttrain\ttest"] + [
    f"{s.name}\t{len(s.train_idx)}\t{len(s.test_idx)}" for s in splits.values()
]
write_text_atomic(sm.output[0], "\n".join(lines) + "\n")
log.info("%d size splits checked: disjoint halves, nested subsets, one test set", len(splits))
