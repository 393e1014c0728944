"""bench/bench_training.py's trainer (a), the baseline: a VAE trained as the usual PyTorch
example trains one (a DataLoader over a TensorDataset, an nn.Module, torch.optim.Adam,
``loss.item()`` every batch, a test pass after every epoch). Imported by
bench/bench_training.py."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class ExampleVAE(nn.Module):
    """An MLP VAE as the usual PyTorch example writes it (sigmoid outputs, randn_like noise)."""

    def __init__(self, hidden, z_dim, x_dim=784):
        super().__init__()
        enc, width = [], x_dim
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.enc = nn.Sequential(*enc)
        self.fc_mu = nn.Linear(width, z_dim)
        self.fc_logvar = nn.Linear(width, z_dim)
        dec, width = [], z_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.dec = nn.Sequential(*dec, nn.Linear(width, x_dim), nn.Sigmoid())

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def example_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_baseline(x_train, x_test, hidden, z_dim, epochs, batch_size, lr, device, seed):
    torch.manual_seed(seed)
    cuda = device.type == "cuda"
    kwargs = {"num_workers": 1, "pin_memory": True} if cuda else {}
    train_loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True, **kwargs)
    test_loader = DataLoader(TensorDataset(x_test), batch_size=batch_size, shuffle=False, **kwargs)
    model = ExampleVAE(hidden, z_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        for (data,) in train_loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = example_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for (data,) in test_loader:
                data = data.to(device)
                recon, mu, logvar = model(data)
                test_loss += example_loss(recon, data, mu, logvar).item()
    return model
