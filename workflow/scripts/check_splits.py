"""Rule check_splits: every split file checked (name, MNIST rows) before any training job starts,
so that a damaged split stops the run while the finished models are still on disk."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_mnist
from vae_novelty.splits import check_split, load_split, rows_digest
from vae_novelty.io import atomic_path, setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
mnist = load_mnist(Path(sm.input.data))
lines = ["split\tn_train\tn_test\ttrain_rows\tdata"]
for f in sm.input.splits:
    split = load_split(Path(f), expect_name=Path(f).stem)
    check_split(split, mnist, path=f)
    lines.append(
        f"{split.name}\t{len(split.train_idx)}\t{len(split.test_idx)}\t"
        f"{rows_digest(split.train_idx)}\t{split.data}"
    )
    log.info("%s: %d training rows, %d test rows: ok", f, len(split.train_idx), len(split.test_idx))
with atomic_path(sm.output[0]) as tmp:
    tmp.write_text("\n".join(lines) + "\n")
