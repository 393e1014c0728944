"""The VAE: shapes for every configured architecture, the ELBO against hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from conftest import REPO
from vae_novelty import config as vcfg
from vae_novelty.model import (
    VAE,
    ModelFileError,
    bce_per_image,
    decoder_param_count,
    init_parameters,
    kl_per_image,
    load_model,
    negative_elbo,
    save_model,
)


def all_architectures():
    archs = {}
    for name in ("config/config.yaml", "config/quick.yaml", "tests/configs/tiny.yaml"):
        cfg = vcfg.load_config(yaml.safe_load((REPO / name).read_text()))
        for arch, widths in cfg["model"]["architectures"].items():
            archs[(arch, cfg["model"]["z_dim"])] = widths
        archs[("mini", cfg["model"]["mini"]["z_dim"])] = cfg["model"]["mini"]["hidden"]
    return [(a, z, w) for (a, z), w in archs.items()]


@pytest.mark.parametrize("arch, z_dim, hidden", all_architectures())
def test_shapes_for_every_configured_architecture(arch, z_dim, hidden):
    model = VAE(hidden, z_dim)
    x = torch.rand(5, 784)
    mean, logvar = model.encode(x)
    assert mean.shape == logvar.shape == (5, z_dim)
    logits, m, lv = model(x, torch.zeros(5, z_dim))
    assert logits.shape == (5, 784)
    assert torch.all((model.decode(m) > 0) & (model.decode(m) < 1))
    # encoder widths 784 -> hidden -> z; the decoder mirrors them
    enc = [l.out_features for l in model.linear_layers()[: len(hidden)]]
    dec = [l.out_features for l in model.linear_layers()[len(hidden) + 2 :]]
    assert enc == list(hidden)
    assert dec == list(reversed(hidden)) + [784]
    n_dec = sum(p.numel() for p in model.decoder.parameters())
    assert n_dec == decoder_param_count(hidden, z_dim)


def test_decoder_param_counts_by_hand():
    # z=50 -> 400 -> 784: 50*400 + 400 + 400*784 + 784
    assert decoder_param_count([400], 50) == 20400 + 314384
    # z=50 -> 100 -> 200 -> 400 -> 784
    assert decoder_param_count([400, 200, 100], 50) == (5100 + 20200 + 80400 + 314384)


def test_negative_elbo_hand_computed():
    x = torch.tensor([[1.0, 0.0, 0.5]])
    logits = torch.tensor([[0.0, 0.0, math.log(3.0)]])  # Bernoulli means 1/2, 1/2, 3/4
    mean = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # BCE = -[log 1/2] - [log 1/2] - [0.5 log 3/4 + 0.5 log 1/4]
    bce = 2 * math.log(2) - 0.5 * math.log(0.75) - 0.5 * math.log(0.25)
    # KL = 0.5 * sum(mean^2 + var - 1 - logvar) = 0.5 * ((1 + 1 - 1 - 0) + (0 + 2 - 1 - log 2))
    kl = 0.5 * (1.0 + 1.0 - math.log(2))
    assert bce_per_image(logits, x).item() == pytest.approx(bce, rel=1e-6)
    assert kl_per_image(mean, logvar).item() == pytest.approx(kl, rel=1e-6)
    assert negative_elbo(x, logits, mean, logvar).item() == pytest.approx(bce + kl, rel=1e-6)


def test_forward_hand_computed_on_tiny_network():
    """x_dim=2, hidden=[1], z=1, with hand-set weights: check encode/decode arithmetic."""
    model = VAE([1], 1, x_dim=2)
    layers = model.linear_layers()  # enc 2->1, mean 1->1, logvar 1->1, dec 1->1, dec 1->2
    values = [
        ([[1.0, -1.0]], [0.5]),
        ([[2.0]], [0.0]),
        ([[0.0]], [-1.0]),
        ([[1.0]], [0.0]),
        ([[1.0], [-1.0]], [0.0, 0.0]),
    ]
    with torch.no_grad():
        for layer, (w, b) in zip(layers, values):
            layer.weight.copy_(torch.tensor(w))
            layer.bias.copy_(torch.tensor(b))
    x = torch.tensor([[0.75, 0.25]])
    mean, logvar = model.encode(x)  # h = relu(0.75 - 0.25 + 0.5) = 1
    assert mean.item() == pytest.approx(2.0) and logvar.item() == pytest.approx(-1.0)
    eps = torch.tensor([[0.5]])
    z = model.reparameterize(mean, logvar, eps)  # 2 + exp(-0.5) * 0.5
    assert z.item() == pytest.approx(2 + math.exp(-0.5) * 0.5)
    logits = model.decode_logits(z)  # relu(z) -> [z, -z]
    assert logits.tolist()[0] == pytest.approx([z.item(), -z.item()])


def test_init_depends_only_on_seed():
    a, b, c = VAE([20], 3), VAE([20], 3), VAE([20], 3)
    init_parameters(a, torch.Generator().manual_seed(7))
    init_parameters(b, torch.Generator().manual_seed(7))
    init_parameters(c, torch.Generator().manual_seed(8))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    w = a.linear_layers()[0].weight
    assert w.abs().max() <= 1 / math.sqrt(784)


def test_save_load_round_trip_and_architecture_check(tmp_path):
    model = VAE([16, 8], 4)
    save_model(model, tmp_path / "m.pt", model_id="x")
    back, meta = load_model(tmp_path / "m.pt", expect_hidden=[16, 8], expect_z_dim=4)
    assert meta["model_id"] == "x"
    for p, q in zip(model.parameters(), back.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ModelFileError, match=r"hidden widths \[16, 8\], expected \[16\]"):
        load_model(tmp_path / "m.pt", expect_hidden=[16])
    with pytest.raises(ModelFileError, match=r"dim\(z\)=4, expected 5"):
        load_model(tmp_path / "m.pt", expect_z_dim=5)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="cannot read model file"):
        load_model(tmp_path / "bad.pt")


# found by mutation testing (bench/mutation.sh model; docs/benchmarks/mutation.md)


def test_invalid_architectures_are_refused_by_name():
    from vae_novelty.model import VAE

    for hidden, z_dim in (([], 2), ([4, 0], 2), ([4], 0)):
        with pytest.raises(
            ValueError, match=rf"^invalid architecture hidden=\[.*\] z_dim={z_dim}$"
        ):
            VAE(hidden, z_dim)


def test_float64_parameters_are_drawn_in_float64():
    # a float64 model gets float64 draws (53 random bits), not float32 values widened
    from vae_novelty.model import VAE, init_parameters

    model = VAE([6], 2, x_dim=5).double()
    init_parameters(model, torch.Generator().manual_seed(0))
    w = model.fc_mean.weight
    assert w.dtype == torch.float64 and (w != w.float().double()).any()


def test_kl_of_a_negative_mean_by_hand():
    from vae_novelty.model import kl_per_image

    # KL(N(-1, e^0) || N(0, 1)) = 0.5 (1 + 1 - 1 - 0) = 0.5; dims add: + 0.5 (4 + e - 1 - 1)
    got = kl_per_image(
        torch.tensor([[-1.0, -2.0]], dtype=torch.float64),
        torch.tensor([[0.0, 1.0]], dtype=torch.float64),
    )
    assert got.item() == pytest.approx(0.5 + 0.5 * (4 + math.e - 2), rel=1e-15)


def test_encoder_param_count_against_a_model():
    from vae_novelty.model import VAE, encoder_param_count

    model = VAE([3, 5, 2], 4, x_dim=7)
    modules = (model.encoder_body, model.fc_mean, model.fc_logvar)
    assert encoder_param_count([3, 5, 2], 4, x_dim=7) == sum(
        p.numel() for m in modules for p in m.parameters()
    )


class _NotAModel:
    pass


def test_load_model_refuses_foreign_files_and_other_models(tmp_path):
    from vae_novelty.model import MODEL_FORMAT, load_model, save_model

    pickled = tmp_path / "object.pt"
    torch.save({"format": MODEL_FORMAT, "x": _NotAModel()}, pickled)  # needs unpickling code
    with pytest.raises(ModelFileError, match="cannot read model file"):
        load_model(pickled)
    other = tmp_path / "other.pt"
    torch.save({"format": "something/1"}, other)
    with pytest.raises(
        ModelFileError, match=f"^{other}: not a vae-novelty model file \\(format {MODEL_FORMAT}\\)$"
    ):
        load_model(other)
    path = tmp_path / "m.pt"
    save_model(VAE([3], 2, x_dim=5), path, model_id="h3_split0_seed0")  # 5 pixels, not 784
    model, meta = load_model(path, expect_model_id="h3_split0_seed0")
    assert model.x_dim == 5 and meta["model_id"] == "h3_split0_seed0"
    with pytest.raises(
        ModelFileError,
        match=f"^{path}: holds model 'h3_split0_seed0', expected "
        "'h3_split1_seed0' \\(a file of another split",
    ):
        load_model(path, expect_model_id="h3_split1_seed0")
