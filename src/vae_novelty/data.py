"""MNIST: reading IDX files, verifying checksums, the arrays' data fingerprint and the
prepared ``results/data/mnist.npz``. The paper's splits of it are in :mod:`vae_novelty.splits`.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import atomic_path

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
N_PIXELS = 784


class DataError(RuntimeError):
    """An input data file is missing, corrupt or not what was expected."""


def find_idx_file(folder: Path, name: str) -> Path:
    """The IDX file ``name`` in ``folder``, gzipped (``.gz``) or not."""
    folder = Path(folder)
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing MNIST file: neither {folder / name}.gz nor {folder / name} exists")


def read_bytes(path: Path) -> bytes:
    """The decompressed content of an IDX file (gzip is detected by its magic bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from exc
    return raw


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style file: ``<hex>  <name>`` per line."""
    sums = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def verify(name: str, path: Path, content: bytes, sums: dict[str, str] | None) -> None:
    if sums is None:
        return
    if name not in sums:
        raise DataError(f"{path}: no checksum for {name} in the checksum file")
    got = hashlib.sha256(content).hexdigest()
    if got != sums[name]:
        raise DataError(
            f"{path}: SHA256 of the decompressed content is {got}, expected "
            f"{sums[name]} (corrupt file, or not the original MNIST {name})"
        )


def parse_idx(content: bytes, expected_magic: int, path: Path) -> np.ndarray:
    if len(content) < 8:
        raise DataError(f"{path}: too short to be an IDX file ({len(content)} bytes)")
    magic = struct.unpack(">I", content[:4])[0]
    if magic != expected_magic:
        kind = "images (0x00000803)" if expected_magic == IMAGE_MAGIC else "labels (0x00000801)"
        raise DataError(f"{path}: IDX magic number is 0x{magic:08x}, expected {kind}")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", content[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(content) - offset != expected:
        raise DataError(
            f"{path}: header says {dims} ({expected} bytes of data) but the file "
            f"holds {len(content) - offset}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=offset).reshape(dims)


@dataclass
class Mnist:
    """MNIST as uint8 arrays: images (N, 784) and labels (N,), and their fingerprint
    (:func:`data_fingerprint`, computed from the arrays when not given)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = data_fingerprint(self.arrays())

    def arrays(self) -> dict[str, np.ndarray]:
        """The four arrays by :data:`FILES` key."""
        return {key: getattr(self, key) for key in FILES}


def data_fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """The data's fingerprint: SHA-256 (16 hex digits) of the arrays' names, dtypes, shapes and
    bytes. Every file made from the data records it (split, model, posterior, Theorem 1 and
    ELBO files) and every reader checks it, so a file made from other data (another dataset,
    another MNIST copy, another subsample) is refused instead of mixed in."""
    digest = hashlib.sha256()
    for key in FILES:
        arr = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
        digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()[:16]


def content_digest(values) -> str:
    """SHA-256 of an array's (or tensor's) dtype, shape and bytes: the identity of the data."""
    torch = sys.modules.get("torch")  # a tensor implies torch is loaded; this module needs none
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.ascontiguousarray(values)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return "content-sha256:" + h.hexdigest()


def check_fingerprint(recorded, expected: str, where, what: str = "made from") -> None:
    """Refuse a file whose recorded data fingerprint is not ``expected`` (or is missing)."""
    if recorded is None:
        raise DataError(
            f"{where}: records no data fingerprint (made by an older version of "
            f"the pipeline? rerun the step that makes it)"
        )
    if recorded != expected:
        raise DataError(
            f"{where}: {what} data {recorded}, but this run's data is {expected} "
            f"(a file from another dataset or run?)"
        )


def source_digest(folder: Path | None, checksums: Path | None) -> str:
    """SHA-256 (16 hex digits) of the content of the files :func:`load_idx_folder` reads from
    ``folder`` (None: none, e.g. a download) and ``checksums``; missing files are left out
    (reading them names them). The data rule's params carry it, so new content reruns it while
    a new modification time alone does not."""
    paths = []
    if folder is not None:
        for name in FILES.values():
            try:
                paths.append(find_idx_file(folder, name))
            except DataError:
                pass
    if checksums is not None and Path(checksums).is_file():
        paths.append(Path(checksums))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_idx_folder(folder: Path, checksums: Path | None) -> Mnist:
    """Read the four MNIST IDX files from ``folder``, verifying each against ``checksums``."""
    sums = read_checksums(checksums) if checksums is not None else None
    arrays = {}
    for key, name in FILES.items():
        path = find_idx_file(folder, name)
        content = read_bytes(path)
        verify(name, path, content, sums)
        magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
        arr = parse_idx(content, magic, path)
        if key.endswith("images"):
            if arr.ndim != 3 or arr.shape[1] * arr.shape[2] != N_PIXELS:
                raise DataError(f"{path}: images are {arr.shape[1:]} pixels, expected 28x28")
            arr = arr.reshape(len(arr), N_PIXELS)
        elif arr.max(initial=0) > 9:
            raise DataError(f"{path}: labels must be digits 0..9, found {int(arr.max())}")
        arrays[key] = arr
    for part in ("train", "test"):
        n_img, n_lab = len(arrays[f"{part}_images"]), len(arrays[f"{part}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{folder}: {FILES[part + '_images']} has {n_img} images but "
                f"{FILES[part + '_labels']} has {n_lab} labels"
            )
    return Mnist(**arrays)


def torchvision_download(root: Path) -> Path:
    """Download MNIST with torchvision (needs internet) and return its folder of raw IDX files."""
    try:
        from torchvision.datasets import MNIST
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError("data.source is 'torchvision' but torchvision is not installed") from exc
    MNIST(str(root), train=True, download=True)
    MNIST(str(root), train=False, download=True)
    return Path(root) / "MNIST" / "raw"


def resolve_source(source: str, folder: str | None, bundled: Path, torchvision_root: Path) -> Path:
    if source == "bundled":
        return Path(bundled)
    if source == "folder":
        if not folder:
            raise DataError("data.source is 'folder' but data.folder is not set")
        if not Path(folder).is_dir():
            raise DataError(f"data.folder {folder!r} is not a folder")
        return Path(folder)
    if source == "torchvision":
        return torchvision_download(Path(torchvision_root))
    raise DataError(f"unknown data.source {source!r} (bundled, folder or torchvision)")


def save_mnist(mnist: Mnist, path: Path, source: str = "") -> None:
    """Write ``results/data/mnist.npz`` atomically: the arrays, their fingerprint and
    ``source``, the :func:`source_digest` of the files they were read from (each read back by
    :func:`npz_string`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                **mnist.arrays(),
                fingerprint=np.array(mnist.fingerprint),
                source=np.array(source),
            )


def checksums_problem(checksums: Path | None) -> str | None:
    """Why the checksums file the configuration names (``data.checksums``) cannot be used;
    None when it can (or when verification is switched off: None)."""
    if checksums is None or Path(checksums).is_file():
        return None
    what = "is a folder, not a file" if Path(checksums).exists() else "does not exist"
    return (
        f"config key data.checksums: {checksums} {what} (name a sha256sum file of the IDX "
        f"files, relative to the repository, or null to skip verification)"
    )


def source_problem(
    npz_path: Path | str, digest: str, folder: Path | None, checksums: Path | None
) -> str | None:
    """Why the data rule would fail, checked while the workflow is parsed; None when it would
    not. When ``npz_path`` (``results/data/mnist.npz``) was made from source content ``digest``
    the data rule does not rerun and nothing is read. Otherwise the IDX files in ``folder``
    are read and verified now (about a second): found by the job instead, a bad source would
    stop the run only after Snakemake deleted ``mnist.npz``, and every finished model would
    then be retrained once the source is fixed. ``folder`` None (a download) is left to the
    job."""
    try:
        recorded = npz_string(npz_path, "source")
    except DataError:
        recorded = None
    if recorded == digest or folder is None:
        return None
    try:
        load_idx_folder(Path(folder), checksums)
    except DataError as exc:
        return str(exc)
    return None


def open_npz(path: Path | str, what: str) -> "np.lib.npyio.NpzFile":
    """The ``.npz`` archive ``path``, opened (use it as a context manager), or a
    :class:`DataError` naming the file when it is missing, truncated, corrupt or not an
    ``.npz`` archive (``what``: how the messages call the content)."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing {what} file {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: cannot read the {what} (truncated, corrupt or not an .npz "
            f"file: {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path}: cannot read the {what} (a single .npy array, not an .npz archive)"
        )
    return npz


def read_npz(path: Path | str, what: str, keys, article: str = "a") -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` file ``path`` (read into memory), or a
    :class:`DataError` naming the file when it cannot be opened (:func:`open_npz`) or lacks
    one of the arrays (``what``: how the messages call the content, ``article`` its
    article)."""
    import zipfile

    with open_npz(path, what) as npz:
        missing = [k for k in keys if k not in npz.files]
        if missing:
            raise DataError(
                f"{path}: not {article} {what} file: missing array(s) {missing} "
                f"(it holds {sorted(npz.files)})"
            )
        try:
            return {k: npz[k] for k in keys}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(
                f"{path}: cannot read the {what} (truncated or corrupt: "
                f"{type(exc).__name__}: {exc})"
            ) from exc


def load_mnist(path: Path) -> Mnist:
    """``results/data/mnist.npz`` (:func:`save_mnist`), checked: a :class:`DataError` naming
    the file when it cannot be read, is not such a file, or its arrays are not MNIST-shaped
    (uint8 images ``(N, 784)``, digit labels ``(N,)``)."""
    arrays = read_npz(path, "MNIST arrays", FILES, article="an")
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 2 or images.shape[1] != N_PIXELS:
            raise DataError(
                f"{path}: {part}_images has shape {images.shape}, expected (N, {N_PIXELS})"
            )
        if images.dtype != np.uint8:
            raise DataError(f"{path}: {part}_images has dtype {images.dtype}, expected uint8")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{path}: {part}_labels has shape {labels.shape} and dtype "
                f"{labels.dtype}, expected integers (N,)"
            )
        if len(images) != len(labels):
            raise DataError(f"{path}: {len(images)} {part}_images but {len(labels)} {part}_labels")
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            bad = int(labels.max()) if labels.max() > 9 else int(labels.min())
            raise DataError(f"{path}: {part}_labels must be digits 0..9, found {bad}")
    mnist = Mnist(**arrays)
    stored = npz_string(path, "fingerprint")
    if stored is not None and stored != mnist.fingerprint:
        raise DataError(
            f"{path}: its arrays have fingerprint {mnist.fingerprint} but the file "
            f"records {stored} (altered after it was written; rerun prepare_mnist)"
        )
    return mnist


def read_fingerprint(path: Path | str) -> str:
    """The data fingerprint ``results/data/mnist.npz`` records, read without loading the
    arrays: what a figure or table rule checks its inputs against."""
    recorded = npz_string(path, "fingerprint")
    if not recorded:
        raise DataError(
            f"{path}: records no data fingerprint (made by an older version of the "
            f"pipeline? rerun prepare_mnist)"
        )
    return recorded


def npz_string(path: Path | str, key: str) -> str | None:
    """The string ``key`` that ``results/data/mnist.npz`` records (None when it has none),
    read without loading the arrays."""
    with open_npz(path, "MNIST arrays") as npz:
        if key not in npz.files:
            return None
    return str(read_npz(path, "MNIST arrays", [key], article="an")[key])


def to_float(images: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1] (x / 255), as in the protocol (not binarised)."""
    return images.astype(np.float32) / np.float32(255.0)
