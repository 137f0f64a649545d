"""One VAE epoch and one GAN epoch in PyTorch eager (the reference for
examples/bench_gan_vae.rs).

The models are those of notebooks/GAN-VAE.ipynb (cells "Encoder/Decoder", "VAE",
"Generator/Discriminator") at the cpu profile's configuration: 50,000 training images
of 1x28x28 in [0, 1] (random here: the content does not change the work), batch 64;
VAE MLP with hidden 512, latent 20, Bernoulli loss + closed-form KL, Adam 1e-3; the GAN's
generator with 16 feature maps at 28x28 (nearest upsampling and 3x3 convolutions), latent
64, the discriminator with 32 feature maps judging packs of 2 images (PacGAN, notebook
cell "Generator/Discriminator"), one D step (with the R1 penalty, gamma 2, on every 4th
step) and one non-saturating G step per batch, Adam(4e-4, betas 0.5/0.999), and an update
of the generator's moving average (notebook cell "GeneratorEma") after each step.
Prints `{"bench": "vae_epoch"|"gan_epoch", "seconds": ..., "unit": "epoch"}` after a
warm-up. Usage: python bench/gan_vae.py  (threads from HW4_THREADS, default 2)
"""
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N, BATCH = 50000, 64
VAE_CFG = dict(hidden=512, latent=20, lr=1e-3)
GAN_CFG = dict(latent=64, g_channels=16, d_channels=32, lr=4e-4, ema=0.999, pac=2, r1_gamma=2.0, r1_every=4)


class Encoder(nn.Module):
    def __init__(self, input_dim, hidden_dim, latent_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.mean = nn.Linear(hidden_dim, latent_dim)
        self.log_var = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.mean(h), self.log_var(h)


class Decoder(nn.Module):
    def __init__(self, latent_dim, hidden_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(latent_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, output_dim)

    def forward(self, z):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(z)))))


class VAE(nn.Module):
    def __init__(self, input_dim, hidden_dim, latent_dim):
        super().__init__()
        self.encoder = Encoder(input_dim, hidden_dim, latent_dim)
        self.decoder = Decoder(latent_dim, hidden_dim, input_dim)

    def forward(self, x):
        mean, log_var = self.encoder(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return self.decoder(z), mean, log_var


def vae_loss(logits, x, mean, log_var):
    rec = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1).mean()
    kl = (0.5 * (log_var.exp() + mean.square() - 1.0 - log_var)).sum(1).mean()
    return rec + kl


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, latent_dim, c):
        super().__init__()
        self.c = c
        self.fc = nn.Linear(latent_dim, 4 * c * 49)
        self.bn0 = nn.BatchNorm1d(4 * c * 49)
        self.conv1 = nn.Conv2d(4 * c, 2 * c, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(2 * c)
        self.conv2 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c)
        self.out = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z))).view(-1, 4 * self.c, 7, 7)
        h = F.relu(self.bn1(self.conv1(F.interpolate(h, size=(14, 14), mode="nearest"))))
        h = F.relu(self.bn2(self.conv2(F.interpolate(h, size=(28, 28), mode="nearest"))))
        return (torch.tanh(self.out(h)) + 1.0) * 0.5


class Discriminator(nn.Module):
    def __init__(self, c, pac):
        super().__init__()
        self.pac = pac
        self.conv1 = nn.Conv2d(pac, c, 4, 2, 1)
        self.conv2 = nn.Conv2d(c, 2 * c, 4, 2, 1)
        self.conv3 = nn.Conv2d(2 * c, 4 * c, 3, 2, 1)
        self.fc = nn.Linear(4 * c * 16, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        x = (x * 2.0 - 1.0).view(n // self.pac, c * self.pac, h, w)
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        h = F.leaky_relu(self.conv3(h), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)


def r1_penalty(d, real):
    """The notebook's r1_penalty: E ||grad_x D(x)||^2 over real images, differentiable."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def batches(epoch):
    g = torch.Generator().manual_seed(epoch)
    return torch.randperm(N, generator=g).split(BATCH)


def vae_epoch(vae, opt, data, epoch, limit=None):
    for i, idx in enumerate(batches(epoch)):
        if limit is not None and i >= limit:
            break
        x = data[idx]
        logits, mean, log_var = vae(x)
        loss = vae_loss(logits, x, mean, log_var)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()


class GeneratorEma:
    """The notebook's GeneratorEma: a copy of G averaged after every step,
    beta_t = min(decay, (1 + t) / (10 + t)) (batch norm statistics included)."""

    def __init__(self, g, decay):
        self.avg = {k: v.detach().clone() for k, v in g.state_dict().items()}
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, g):
        self.updates += 1
        t = float(self.updates)
        beta = min(self.decay, (1.0 + t) / (10.0 + t))
        for k, w in g.state_dict().items():
            a = self.avg[k]
            if w.is_floating_point():
                a.copy_(a * beta + w * (1.0 - beta))
            else:
                a.copy_(w)


def gan_epoch(g, d, opt_g, opt_d, data, epoch, limit=None, ema=None):
    for i, idx in enumerate(batches(epoch)):
        if limit is not None and i >= limit:
            break
        real = data[idx]
        z = torch.randn(real.shape[0], GAN_CFG["latent"])
        fake = g(z)
        lr, lf = d(real), d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
            F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        if i % GAN_CFG["r1_every"] == 0:
            penalty = r1_penalty(d, real) * (GAN_CFG["r1_gamma"] / 2.0 * GAN_CFG["r1_every"])
            total = loss_d + penalty
        else:
            total = loss_d
        opt_d.zero_grad()
        total.backward()
        opt_d.step()
        lg = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        ema.update(g)
        loss_d.item(), loss_g.item()
        torch.sigmoid(lr).mean().item(), torch.sigmoid(lf).mean().item()


def main():
    torch.set_num_threads(int(os.environ.get("HW4_THREADS", "2")))
    torch.manual_seed(0)
    data = torch.rand(N, 1, 28, 28)

    vae = VAE(784, VAE_CFG["hidden"], VAE_CFG["latent"])
    opt = torch.optim.Adam(vae.parameters(), lr=VAE_CFG["lr"])
    vae_epoch(vae, opt, data, 0, limit=20)
    t0 = time.perf_counter()
    vae_epoch(vae, opt, data, 1)
    print(json.dumps({"bench": "vae_epoch", "seconds": time.perf_counter() - t0, "unit": "epoch"}), flush=True)

    g, d = Generator(GAN_CFG["latent"], GAN_CFG["g_channels"]), Discriminator(GAN_CFG["d_channels"], GAN_CFG["pac"])
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=GAN_CFG["lr"], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=GAN_CFG["lr"], betas=(0.5, 0.999))
    ema = GeneratorEma(g, GAN_CFG["ema"])
    gan_epoch(g, d, opt_g, opt_d, data, 0, limit=10, ema=ema)
    t0 = time.perf_counter()
    gan_epoch(g, d, opt_g, opt_d, data, 1, ema=ema)
    print(json.dumps({"bench": "gan_epoch", "seconds": time.perf_counter() - t0, "unit": "epoch"}), flush=True)


if __name__ == "__main__":
    main()
