"""One DDPM U-Net training step in PyTorch eager (the reference for examples/bench_ddpm.rs).

The model is the U-Net of notebooks/DDPM.ipynb (cells "Resnet Block" ... "Final Network"),
the step is the notebook's `training_step`: random t, add noise (Ho et al. 2020, eq. 4),
predict the noise, MSE, backward, clip the gradient norm at 1, AdamW. The configuration
(U-Net, batch, image size, noise schedule) is the one the Rust side printed, which takes
it from the notebook: bench/run.py passes it in BENCH_CONFIG (JSON).
Prints `{"bench": "unet_train_step", "seconds": ..., "unit": "step"}` after a warm-up.

Then part 3's conditional U-Net (the notebook's `CondUNet`: the same U-Net on [x_t; glyph
template], with the text's vector added to the time embedding) and one training step as
`CondDdpm::train` takes it: the condition of each example dropped (null codes, all-ones
template) with probability p_uncond, the loss weighted per example by min(SNR_t, gamma) / SNR_t
(min-SNR-gamma), gradient norm clipped at 1, AdamW. Its configuration is the `cond_*` keys the
Rust side printed; it prints `{"bench": "cond_unet_train_step", ...}` and fails if its
parameter count differs from the Rust side's (`cond_params`).
Usage: python bench/run.py ddpm  (threads from HW4_THREADS, default 2)
"""
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

UNET_KEYS = ("in_ch", "out_ch", "base", "temb_size", "norm_groups", "layers_down", "layers_up", "num_heads", "bf16")


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
    def __init__(self, in_ch, out_ch, base, temb_size, norm_groups, layers_down, layers_up, num_heads, bf16=False):
        super().__init__()
        self.bf16 = bf16
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

    def time_embedding(self, t):
        return self.temb2(F.silu(self.temb1(sinusoidal(t, self.temb_size))))

    def forward(self, x, t):
        return self.forward_with_emb(x, self.time_embedding(t))

    def forward_with_emb(self, x, temb):
        # The notebook's UNet::forward_with_emb: with bf16, autocast up to the output convolution.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            x = self.conv_in(x)
            skips = [x]
            for d in self.downs:
                x, hidden = d(x, temb)
                skips += hidden
            x = self.mid(x, temb)
            for u in self.ups:
                x = u(x, skips, temb)
            x = F.silu(self.norm_out(x)).float()
        return self.conv_out(x)


class TextEncoder(nn.Module):
    """Character codes [B, L] (code `vocab` is the null character) -> [B, temb_dim]."""

    def __init__(self, vocab, text_len, char_dim, temb_dim):
        super().__init__()
        self.chars = nn.Embedding(vocab + 1, char_dim)
        self.pos = nn.Embedding(text_len, char_dim)
        self.glob1 = nn.Linear(text_len * char_dim, temb_dim)
        self.glob2 = nn.Linear(temb_dim, temb_dim)
        self.text_len = text_len

    def forward(self, codes):
        pos = self.pos(torch.arange(self.text_len, device=codes.device))
        tokens = self.chars(codes) + pos[None]
        return self.glob2(F.silu(self.glob1(tokens.flatten(1, 2))))


class CondUNet(nn.Module):
    """eps_theta(x_t, t, y): the U-Net on [x_t; template], text vector added to the time embedding."""

    def __init__(self, in_ch, base, temb_size, norm_groups, layers_down, layers_up, num_heads, vocab, text_len, char_dim,
                 bf16=False, self_cond=False):
        super().__init__()
        extra = in_ch if self_cond else 0
        self.unet = UNet(in_ch + 1 + extra, in_ch, base, temb_size, norm_groups, layers_down, layers_up, num_heads, bf16)
        self.text = TextEncoder(vocab, text_len, char_dim, 4 * temb_size)
        self.text_len, self.null_code, self.self_cond = text_len, vocab, self_cond

    def forward(self, x, t, codes, template, x0_prev=None):
        """With self-conditioning (Chen et al. 2023), x0_prev (zeros if None) is one more input channel."""
        emb = self.unet.time_embedding(t) + self.text(codes)
        inputs = [x, template]
        if self.self_cond:
            inputs.append(torch.zeros_like(x) if x0_prev is None else x0_prev)
        return self.unet.forward_with_emb(torch.cat(inputs, 1), emb)


COND_KEYS = ("in_ch", "base", "temb_size", "norm_groups", "layers_down", "layers_up", "num_heads",
             "vocab", "text_len", "char_dim", "bf16", "self_cond")


def min_snr_weights(abar, gamma):
    """min(SNR_t, gamma) / SNR_t per timestep, SNR_t = abar_t / (1 - abar_t) (abar in float64)."""
    snr = abar / (1.0 - abar)
    return (snr.clamp(max=gamma) / snr).float()


def seconds_per_step(step, n):
    """Seconds per call of `step`: three warm-up calls, then the mean of `n` timed ones."""
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def bench_cond(cfg, n):
    torch.manual_seed(1)
    c = {k: cfg["cond_" + k] for k in COND_KEYS}
    net = CondUNet(**c)
    params = sum(p.numel() for p in net.parameters())
    if params != cfg["cond_params"]:
        raise SystemExit(f"bench/ddpm.py: CondUNet has {params} parameters here, "
                         f"{cfg['cond_params']} on the Rust side: the two models differ")
    lr, p_uncond = cfg["cond_lr"], cfg["cond_p_uncond"]
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    T = cfg["cond_num_train_timesteps"]
    betas = torch.linspace(cfg["cond_beta_start"], cfg["cond_beta_end"], T, dtype=torch.float64)
    abar64 = torch.cumprod(1.0 - betas, 0)
    abar = abar64.float()
    loss_weight = min_snr_weights(abar64, cfg["cond_min_snr_gamma"])
    batch, ch, h, w = cfg["cond_batch"], c["in_ch"], cfg["cond_height"], cfg["cond_width"]
    x0 = torch.rand(batch, ch, h, w) * 2 - 1
    codes = torch.randint(0, c["vocab"], (batch, c["text_len"]))
    template = torch.rand(batch, ch, h, w) * 2 - 1

    k = [0]

    def step():
        # Self-conditioning's first pass on every other step (half of the batches, as in CondDdpm::train).
        first_pass = c["self_cond"] and k[0] % 2 == 1
        k[0] += 1
        # CondDdpm::train: drop the condition (null codes, all-ones template) with probability p_uncond.
        dropped = torch.rand(batch) < p_uncond
        null_codes = torch.full((batch, c["text_len"]), net.null_code, dtype=torch.int64)
        null_template = torch.ones(batch, ch, h, w)
        y_codes = torch.where(dropped[:, None], null_codes, codes)
        y_template = torch.where(dropped[:, None, None, None], null_template, template)
        # The notebook's training_step with the min-SNR weighted loss.
        t = torch.randint(0, T, (batch,))
        noise = torch.randn_like(x0)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        prev = None
        if first_pass:
            with torch.no_grad():
                eps = net(xt, t, y_codes, y_template)
                prev = ((xt - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        err = (net(xt, t, y_codes, y_template, prev) - noise).square().mean(dim=(1, 2, 3))
        objective, reported = (err * loss_weight[t]).mean(), err.mean()
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        objective.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return reported.item()

    sec = seconds_per_step(step, n)
    print(json.dumps({"bench": "cond_unet_train_step", "seconds": sec, "unit": "step", "params": params}))


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

    n = int(os.environ.get("DDPM_STEPS", 10))
    sec = seconds_per_step(step, n)
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"bench": "unet_train_step", "seconds": sec, "unit": "step", "params": params}))
    bench_cond(cfg, n)


if __name__ == "__main__":
    main()
