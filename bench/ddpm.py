"""One DDPM U-Net training step in PyTorch eager (the reference for examples/bench_ddpm.rs).

The model is the U-Net of notebooks/DDPM.ipynb (cells "Resnet Block" ... "Final Network"),
the step is the notebook's `training_step`: random t, add noise (Ho et al. 2020, eq. 4),
predict the noise, MSE, backward, clip the gradient norm at 1, AdamW. The configuration
(U-Net, batch, image size, noise schedule) is the one the Rust side printed, which takes
it from the notebook: bench/run.py passes it in BENCH_CONFIG (JSON).
Prints `{"bench": "unet_train_step", "seconds": ..., "unit": "step"}` after a warm-up.
Usage: python bench/run.py ddpm  (threads from HW4_THREADS, default 2)
"""
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

UNET_KEYS = ("in_ch", "out_ch", "base", "temb_size", "norm_groups", "layers_down", "layers_up", "num_heads")


def bench_config():
    """The configuration examples/bench_ddpm.rs printed (see bench/run.py)."""
    if "BENCH_CONFIG" not in os.environ:
        raise SystemExit("bench/ddpm.py: no BENCH_CONFIG; run it through `python bench/run.py ddpm`")
    return json.loads(os.environ["BENCH_CONFIG"])


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups, residual=True):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.residual = residual
        self.shortcut = nn.Conv2d(cin, cout, 1) if residual and cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if not self.residual:
            return h
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class MultiHeadAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens):
        b, l, c = tokens.shape
        q, k, v = self.qkv(tokens).view(b, l, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(c // self.heads), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, l, c))


class AttentionBlock(nn.Module):
    def __init__(self, dim, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 4 * dim)
        self.ff2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        b, c, h, w = x.shape
        y = x.flatten(2).transpose(1, 2) + self.attn(self.norm(x).flatten(2).transpose(1, 2))
        y = y + self.ff2(F.gelu(self.ff1(self.ff_norm(y))))
        return y.transpose(1, 2).reshape(b, c, h, w)


class DownBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups, layers, sampling, attn, heads):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout, temb, groups) for i in range(layers)])
        self.attns = nn.ModuleList([AttentionBlock(cout, heads, groups) for _ in range(layers)]) if attn else None
        self.down = nn.Conv2d(cout, cout, 3, stride=2, padding=1) if sampling else None

    def forward(self, x, temb):
        hidden = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attns is not None:
                x = self.attns[i](x)
            hidden.append(x)
        if self.down is not None:
            x = self.down(x)
            hidden.append(x)
        return x, hidden


class UpBlock(nn.Module):
    # skip: channels of the skip tensor the last ResnetBlock receives; the others carry cout.
    def __init__(self, cin, skip, cout, temb, groups, layers, sampling, attn, heads):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock((cin if i == 0 else cout) + (skip if i == layers - 1 else cout), cout, temb, groups)
            for i in range(layers)])
        self.attns = nn.ModuleList([AttentionBlock(cout, heads, groups) for _ in range(layers)]) if attn else None
        self.up = nn.Conv2d(cout, cout, 3, padding=1) if sampling else None

    def forward(self, x, skips, temb):
        for i, r in enumerate(self.resnets):
            x = r(torch.cat([x, skips.pop()], 1), temb)
            if self.attns is not None:
                x = self.attns[i](x)
        if self.up is not None:
            x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class MidBlock(nn.Module):
    def __init__(self, c, temb, groups, layers, heads):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(c, c, temb, groups) for _ in range(layers)])
        self.attn = AttentionBlock(c, heads, groups)

    def forward(self, x, temb):
        for r in self.resnets:
            x = r(x, temb)
        return self.attn(x)


def sinusoidal(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


class UNet(nn.Module):
    def __init__(self, in_ch, out_ch, base, temb_size, norm_groups, layers_down, layers_up, num_heads):
        super().__init__()
        c = base
        outs = [c, c, 2 * c, 2 * c, 4 * c, 4 * c]
        ins = [c] + outs[:-1]
        attn = [False, False, False, True, True, False]
        self.temb_size = temb_size
        temb = 4 * temb_size
        self.temb1 = nn.Linear(temb_size, temb)
        self.temb2 = nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(in_ch, c, 3, padding=1)
        self.downs = nn.ModuleList([DownBlock(ins[d], outs[d], temb, norm_groups, layers_down, d < 5, attn[d], num_heads)
                                    for d in range(6)])
        self.mid = MidBlock(outs[-1], temb, norm_groups, 1, num_heads)
        ups, prev = [], outs[-1]
        for d in reversed(range(6)):
            ups.append(UpBlock(prev, ins[d], outs[d], temb, norm_groups, layers_up, d > 0, attn[d], num_heads))
            prev = outs[d]
        self.ups = nn.ModuleList(ups)
        self.norm_out = nn.GroupNorm(norm_groups, c)
        self.conv_out = nn.Conv2d(c, out_ch, 3, padding=1)

    def forward(self, x, t):
        temb = self.temb2(F.silu(self.temb1(sinusoidal(t, self.temb_size))))
        x = self.conv_in(x)
        skips = [x]
        for d in self.downs:
            x, hidden = d(x, temb)
            skips += hidden
        x = self.mid(x, temb)
        for u in self.ups:
            x = u(x, skips, temb)
        return self.conv_out(F.silu(self.norm_out(x)))


def main():
    torch.set_num_threads(int(os.environ.get("HW4_THREADS", "2")))
    torch.manual_seed(0)
    cfg = bench_config()
    net = UNet(**{k: cfg[k] for k in UNET_KEYS})
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    T = cfg["num_train_timesteps"]
    betas = torch.linspace(cfg["beta_start"], cfg["beta_end"], T, dtype=torch.float64)
    abar = torch.cumprod(1.0 - betas, 0).float()
    batch = cfg["batch"]
    x0 = torch.rand(batch, cfg["in_ch"], cfg["height"], cfg["width"]) * 2 - 1

    def step():
        t = torch.randint(0, T, (batch,))
        noise = torch.randn_like(x0)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = F.mse_loss(net(xt, t), noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    n = int(os.environ.get("DDPM_STEPS", 10))
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sec = (time.perf_counter() - t0) / n
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"bench": "unet_train_step", "seconds": sec, "unit": "step", "params": params}))


if __name__ == "__main__":
    main()
