"""Rule prepare_mnist: read and verify the MNIST IDX files, save them as one .npz."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.data import load_idx_folder, resolve_source, save_mnist
from vae_novelty.io import in_repo, setup_logging

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
folder = resolve_source(p.source, p.folder, in_repo(p.bundled), in_repo(p.torchvision_root))
log.info("reading MNIST IDX files from %s (source: %s)", folder, p.source)
if p.checksums is None:
    log.warning("data.checksums is null: files are NOT verified")
mnist = load_idx_folder(folder, in_repo(p.checksums))
log.info(
    "verified: %d training and %d test images", len(mnist.train_images), len(mnist.test_images)
)
log.info("data fingerprint %s (source content %s)", mnist.fingerprint, p.content)
save_mnist(mnist, Path(sm.output[0]), source=p.content)
