"""A digit classifier used as a measuring instrument for generated samples.

A small CNN (two 5x5 convolutions of stride 2 with 16 and 32 channels, each followed by ReLU,
a 128-unit hidden layer, 10 outputs; about 0.9 M multiply-adds per image), trained on all of MNIST^tr (pixels x/255, all
ten digits) with Adam and cross-entropy, seeded (initial weights and batch order from
``torch.Generator().manual_seed(seed)``), no download. Its MNIST^te accuracy, overall and
per digit, is recorded with it (``classifier.json``) and shown in the report.

What its errors mean for the numbers it produces: the samples stage reports the class it
assigns to each decoder output (``digit``, ``digit_prob``) and, for a model trained without
digit d, the fraction of samples classified as d (``sample_heldout_frac``). The classifier is
an imperfect instrument in two ways. (1) On real digits it errs at its test error rate;
``classifier.json`` records, per digit d, the fraction of real test images of *other* digits
it calls d (``called_d_when_not_d``): a ``sample_heldout_frac`` of that size is what
misclassification alone would give, i.e. no evidence that the model draws d. (2) Decoder
outputs are not real digits: on a blurred or ambiguous image the classifier still answers one
of ten classes, often with a high probability, and its test accuracy says nothing about how
it errs there. So a held-out fraction well above the confusion rate says that some samples
*look like d to this classifier*; look at those samples (their images are in the .npz for
the first ``samples.figure_images``) and at ``digit_prob`` before reading it as "the model
generates d". The class histogram (``sample_digit_frac_*``) has the same caveat.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import torch
from torch import nn

from .data import check_fingerprint, to_float
from .io import provenance, write_text_atomic
from .model import ModelFileError, write_torch_atomic

log = logging.getLogger("vae_novelty")
CLASSIFIER_FORMAT = "vae-novelty-classifier/1"


class DigitCNN(nn.Module):
    """28x28 images (N, 784) in [0, 1] -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, 28, 28)))


def train_classifier(
    images, labels, *, epochs: int, batch_size: int, learning_rate: float, seed: int, device="cpu"
) -> DigitCNN:
    """Train :class:`DigitCNN` on ``images`` (N, 784) uint8 or [0, 1] floats and ``labels``."""
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    model = DigitCNN()
    with torch.no_grad():  # initial weights from the seeded generator, not the global state
        for p in model.parameters():
            if p.dim() > 1:
                bound = 1.0 / np.sqrt(p[0].numel())
                p.copy_(torch.empty_like(p).uniform_(-bound, bound, generator=gen))
            else:
                p.zero_()
    model.to(device)
    x = torch.as_tensor(_floats(images), device=device)
    y = torch.as_tensor(np.asarray(labels, np.int64), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    n = len(x)
    for epoch in range(1, int(epochs) + 1):
        t0, total = time.perf_counter(), 0.0
        order = torch.randperm(n, generator=gen).to(device)
        model.train()
        for i0 in range(0, n, batch_size):
            idx = order[i0 : i0 + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log.info(
            "classifier epoch %d/%d: mean loss %.4f (%.1fs)",
            epoch,
            epochs,
            total / n,
            time.perf_counter() - t0,
        )
    return model.eval()


def _floats(images) -> np.ndarray:
    images = np.asarray(images)
    return to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


@torch.inference_mode()
def classify(
    model: DigitCNN, images, device="cpu", batch_size: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """``(digit int8, probability float64)`` per image (N, 784): the arg-max class (ties to the
    lower digit) and its softmax probability."""
    model = model.to(device).eval()
    x = _floats(images)
    digits, probs = np.empty(len(x), np.int8), np.empty(len(x))
    for i0 in range(0, len(x), batch_size):
        p = (
            torch.softmax(
                model(torch.as_tensor(x[i0 : i0 + batch_size], device=device)).double(), 1
            )
            .cpu()
            .numpy()
        )
        digits[i0 : i0 + batch_size] = p.argmax(1)
        probs[i0 : i0 + batch_size] = p.max(1)
    return digits, probs


def accuracy_report(model, images, labels, device="cpu") -> dict:
    """Overall and per-digit accuracy, and the confusion matrix (rows: true digit)."""
    pred, _ = classify(model, images, device)
    labels = np.asarray(labels, np.int64)
    conf = np.zeros((10, 10), np.int64)
    np.add.at(conf, (labels, pred.astype(np.int64)), 1)
    per = {str(d): float(conf[d, d] / conf[d].sum()) if conf[d].sum() else None for d in range(10)}
    # how often real images of other digits are called d: the false-positive rate into d
    into = {
        str(d): float((conf[:, d].sum() - conf[d, d]) / (len(labels) - conf[d].sum()))
        if len(labels) > conf[d].sum()
        else None
        for d in range(10)
    }
    return {
        "test_accuracy": float((pred == labels).mean()),
        "n_test": int(len(labels)),
        "per_digit_accuracy": per,
        "called_d_when_not_d": into,
        "confusion": conf.tolist(),
    }


def save_classifier(model: DigitCNN, path, meta: dict) -> None:
    write_torch_atomic(
        {
            "format": CLASSIFIER_FORMAT,
            "meta": meta,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def load_classifier(path, expect_data: str | None = None) -> tuple[DigitCNN, dict]:
    """A classifier written by :func:`save_classifier`; with ``expect_data``, checked to be
    trained on that data fingerprint."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds
        raise ModelFileError(f"{path}: cannot read classifier file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CLASSIFIER_FORMAT:
        raise ModelFileError(f"{path}: not a vae-novelty classifier ({CLASSIFIER_FORMAT})")
    if expect_data is not None:
        check_fingerprint(payload["meta"].get("data"), expect_data, path, what="trained on")
    model = DigitCNN()
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload["meta"]


def write_json(obj: dict, path) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def report_html(info: dict, title: str) -> str:
    """A small HTML page for the report: accuracy overall and per digit."""
    rows = "".join(
        f"<tr><td>{d}</td><td>{100 * info['per_digit_accuracy'][d]:.2f}%</td>"
        f"<td>{100 * info['called_d_when_not_d'][d]:.2f}%</td></tr>"
        for d in sorted(info["per_digit_accuracy"])
        if info["per_digit_accuracy"][d] is not None
    )
    s = info["settings"]
    return (
        f"<html><body><h3>{title}</h3><p>MNIST^te accuracy "
        f"<b>{100 * info['test_accuracy']:.2f}%</b> on {info['n_test']} images; trained on "
        f"{info['n_train']} MNIST^tr images, {s['epochs']} epochs, batch {s['batch_size']}, "
        f"learning rate {s['learning_rate']}, seed {s['seed']}.</p>"
        "<table border=1><tr><th>digit</th><th>accuracy</th>"
        "<th>other digits called this one</th></tr>" + rows + "</table></body></html>\n"
    )


def train_and_save(
    mnist,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    max_train_images: int | None,
    model_path,
    json_path,
    html_path,
    device="cpu",
) -> dict:
    """The rule ``classifier``: train on MNIST^tr (all digits; at most ``max_train_images``,
    a seeded subsample, in reduced test runs), measure on all of MNIST^te, write the model,
    the JSON record and the report page. Returns the record."""
    rows = np.arange(len(mnist.train_labels))
    if max_train_images and max_train_images < len(rows):
        rng = np.random.default_rng([int(seed), 7])
        rows = np.sort(rng.choice(rows, size=int(max_train_images), replace=False))
    t0 = time.perf_counter()
    model = train_classifier(
        mnist.train_images[rows],
        mnist.train_labels[rows],
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        device=device,
    )
    seconds = time.perf_counter() - t0
    info = accuracy_report(model, mnist.test_images, mnist.test_labels, device)
    settings = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "seed": int(seed),
        "max_train_images": max_train_images,
    }
    info.update(
        {
            "settings": settings,
            "n_train": int(len(rows)),
            "data": mnist.fingerprint,
            "architecture": "conv5x5/2(16)-conv5x5/2(32)-fc128",
            **provenance(),
        }
    )
    log.info(
        "classifier: MNIST^te accuracy %.4f (%d training images, %.1fs)",
        info["test_accuracy"],
        len(rows),
        seconds,
    )
    save_classifier(
        model.cpu(), model_path, {k: v for k, v in info.items() if k not in ("confusion",)}
    )
    write_json(info, json_path)
    write_text_atomic(html_path, report_html(info, "Digit classifier (samples stage)"))
    return info
