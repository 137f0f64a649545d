//! One U-Net training step in tch (the Rust side of bench/ddpm.py): the U-Net, noise
//! scheduler and training step of notebooks/DDPM.ipynb at the cpu profile's configuration
//! and batch. The model code below is copied from the notebook's cells "ResnetBlock" ..
//! "UNet" and "Noise Scheduling" (same as notebook cells; regenerate when they change).
//! Prints `{"bench": "unet_train_step", "seconds": ..., "unit": "step"}` after a warm-up.
#![allow(dead_code)]

use hw4::init;
use hw4::tch::nn::{self, OptimizerConfig};
use hw4::tch::{self, Device, Kind, Reduction, Tensor};
use std::time::Instant;

fn conv3x3(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        c_in,
        c_out,
        3,
        nn::ConvConfig {
            padding: 1,
            stride,
            ..init::torch_conv(c_in, 3)
        },
    )
}

#[derive(Debug, Clone, Copy)]
struct ResnetConfig {
    dropout: f64,
    norm_groups: i64,
    residual: bool,
}

impl Default for ResnetConfig {
    fn default() -> Self {
        ResnetConfig {
            dropout: 0.0,
            norm_groups: 1,
            residual: true,
        }
    }
}

struct ResnetBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    temb_proj: nn::Linear,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    shortcut: Option<nn::Conv2D>,
    dropout: f64,
    residual: bool,
}

impl ResnetBlock {
    fn new(p: nn::Path, in_ch: i64, out_ch: i64, temb_size: i64, cfg: ResnetConfig) -> Self {
        ResnetBlock {
            norm1: nn::group_norm(&p / "norm1", cfg.norm_groups, in_ch, Default::default()),
            conv1: conv3x3(&p / "conv1", in_ch, out_ch, 1),
            temb_proj: nn::linear(
                &p / "temb_proj",
                temb_size,
                out_ch,
                init::torch_linear(temb_size),
            ),
            norm2: nn::group_norm(&p / "norm2", cfg.norm_groups, out_ch, Default::default()),
            conv2: conv3x3(&p / "conv2", out_ch, out_ch, 1),
            shortcut: (cfg.residual && in_ch != out_ch).then(|| {
                nn::conv2d(
                    &p / "shortcut",
                    in_ch,
                    out_ch,
                    1,
                    init::torch_conv(in_ch, 1),
                )
            }),
            dropout: cfg.dropout,
            residual: cfg.residual,
        }
    }

    fn forward_t(&self, x: &Tensor, temb: &Tensor, train: bool) -> Tensor {
        let h = x.apply(&self.norm1).silu().apply(&self.conv1);
        let h = h + temb
            .silu()
            .apply(&self.temb_proj)
            .unsqueeze(-1)
            .unsqueeze(-1);
        let h = h
            .apply(&self.norm2)
            .silu()
            .dropout(self.dropout, train)
            .apply(&self.conv2);
        match (&self.shortcut, self.residual) {
            (_, false) => h,
            (Some(shortcut), true) => h + x.apply(shortcut),
            (None, true) => h + x,
        }
    }
}

fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    // Vaswani et al. 2017, eq. 1
    let d_k = *q
        .size()
        .last()
        .expect("attention needs a feature dimension") as f64;
    (q.matmul(&k.transpose(-2, -1)) / d_k.sqrt())
        .softmax(-1, Kind::Float)
        .matmul(v)
}

struct MultiHeadAttention {
    qkv: nn::Linear,
    proj: nn::Linear,
    num_heads: i64,
}

impl MultiHeadAttention {
    fn new(p: nn::Path, dim: i64, num_heads: i64) -> Self {
        assert!(
            dim % num_heads == 0,
            "{dim} features do not split into {num_heads} heads"
        );
        MultiHeadAttention {
            qkv: nn::linear(&p / "qkv", dim, 3 * dim, init::torch_linear(dim)),
            proj: nn::linear(&p / "proj", dim, dim, init::torch_linear(dim)),
            num_heads,
        }
    }

    /// Tokens `[B, L, C]` -> queries, keys, values `[B, heads, L, C / heads]`.
    fn heads(&self, tokens: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (b, l, c) = tokens.size3().expect("tokens must be [B, L, C]");
        let qkv = tokens
            .apply(&self.qkv)
            .view([b, l, 3, self.num_heads, c / self.num_heads])
            .permute([2, 0, 3, 1, 4]);
        (qkv.get(0), qkv.get(1), qkv.get(2))
    }

    fn forward(&self, tokens: &Tensor) -> Tensor {
        let (b, l, c) = tokens.size3().expect("tokens must be [B, L, C]");
        let (q, k, v) = self.heads(tokens);
        attention(&q, &k, &v)
            .transpose(1, 2)
            .reshape([b, l, c])
            .apply(&self.proj)
    }
}

#[derive(Debug, Clone, Copy)]
struct AttentionConfig {
    num_heads: i64,
    norm_groups: i64,
    dropout: f64,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        AttentionConfig {
            num_heads: 4,
            norm_groups: 1,
            dropout: 0.0,
        }
    }
}

struct AttentionBlock {
    norm: nn::GroupNorm,
    attn: MultiHeadAttention,
    ff_norm: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    dropout: f64,
}

impl AttentionBlock {
    fn new(p: nn::Path, feature_dim: i64, cfg: AttentionConfig) -> Self {
        AttentionBlock {
            norm: nn::group_norm(
                &p / "norm",
                cfg.norm_groups,
                feature_dim,
                Default::default(),
            ),
            attn: MultiHeadAttention::new(&p / "attn", feature_dim, cfg.num_heads),
            ff_norm: nn::layer_norm(&p / "ff_norm", vec![feature_dim], Default::default()),
            ff1: nn::linear(
                &p / "ff1",
                feature_dim,
                4 * feature_dim,
                init::torch_linear(feature_dim),
            ),
            ff2: nn::linear(
                &p / "ff2",
                4 * feature_dim,
                feature_dim,
                init::torch_linear(4 * feature_dim),
            ),
            dropout: cfg.dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (b, c, h, w) = x
            .size4()
            .expect("AttentionBlock input must be [B, C, H, W]");
        let tokens = x.apply(&self.norm).flatten(2, 3).transpose(1, 2);
        let y = x.flatten(2, 3).transpose(1, 2) + self.attn.forward(&tokens);
        let ff = y
            .apply(&self.ff_norm)
            .apply(&self.ff1)
            .gelu("none")
            .apply(&self.ff2);
        let y = &y + ff.dropout(self.dropout, train);
        y.transpose(1, 2).reshape([b, c, h, w])
    }
}

#[derive(Debug, Clone, Copy)]
struct BlockConfig {
    dropout: f64,
    norm_groups: i64,
    num_layers: i64,
    add_sampling: bool,
    num_heads: i64,
    /// Up blocks only: channels of the last skip tensor they pop (the previous level's),
    /// when it differs from `skip_ch`.
    last_skip_ch: Option<i64>,
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            dropout: 0.0,
            norm_groups: 1,
            num_layers: 1,
            add_sampling: true,
            num_heads: 8,
            last_skip_ch: None,
        }
    }
}

impl BlockConfig {
    fn resnet(&self) -> ResnetConfig {
        ResnetConfig {
            dropout: self.dropout,
            norm_groups: self.norm_groups,
            residual: true,
        }
    }
    fn attention(&self) -> AttentionConfig {
        AttentionConfig {
            num_heads: self.num_heads,
            norm_groups: self.norm_groups,
            dropout: self.dropout,
        }
    }
}

fn resnet_stack(
    p: &nn::Path,
    in_ch: i64,
    out_ch: i64,
    temb_size: i64,
    cfg: &BlockConfig,
) -> Vec<ResnetBlock> {
    (0..cfg.num_layers)
        .map(|i| {
            ResnetBlock::new(
                p / "resnets" / i,
                if i == 0 { in_ch } else { out_ch },
                out_ch,
                temb_size,
                cfg.resnet(),
            )
        })
        .collect()
}

struct DownBlock {
    resnets: Vec<ResnetBlock>,
    down: Option<nn::Conv2D>,
}

impl DownBlock {
    fn new(p: nn::Path, in_ch: i64, out_ch: i64, temb_size: i64, cfg: BlockConfig) -> Self {
        DownBlock {
            resnets: resnet_stack(&p, in_ch, out_ch, temb_size, &cfg),
            down: cfg
                .add_sampling
                .then(|| conv3x3(&p / "down", out_ch, out_ch, 2)),
        }
    }

    fn forward_t(&self, x: &Tensor, temb: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let mut x = x.shallow_clone();
        let mut hidden = Vec::new();
        for resnet in &self.resnets {
            x = resnet.forward_t(&x, temb, train);
            hidden.push(x.shallow_clone());
        }
        if let Some(down) = &self.down {
            x = x.apply(down);
            hidden.push(x.shallow_clone());
        }
        (x, hidden)
    }
}

struct AttentionDownBlock {
    resnets: Vec<ResnetBlock>,
    attns: Vec<AttentionBlock>,
    down: Option<nn::Conv2D>,
}

impl AttentionDownBlock {
    fn new(p: nn::Path, in_ch: i64, out_ch: i64, temb_size: i64, cfg: BlockConfig) -> Self {
        AttentionDownBlock {
            resnets: resnet_stack(&p, in_ch, out_ch, temb_size, &cfg),
            attns: (0..cfg.num_layers)
                .map(|i| AttentionBlock::new(&p / "attns" / i, out_ch, cfg.attention()))
                .collect(),
            down: cfg
                .add_sampling
                .then(|| conv3x3(&p / "down", out_ch, out_ch, 2)),
        }
    }

    fn forward_t(&self, x: &Tensor, temb: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let mut x = x.shallow_clone();
        let mut hidden = Vec::new();
        for (resnet, attn) in self.resnets.iter().zip(&self.attns) {
            x = attn.forward_t(&resnet.forward_t(&x, temb, train), train);
            hidden.push(x.shallow_clone());
        }
        if let Some(down) = &self.down {
            x = x.apply(down);
            hidden.push(x.shallow_clone());
        }
        (x, hidden)
    }
}

fn upsample(x: &Tensor, conv: &nn::Conv2D) -> Tensor {
    let (_, _, h, w) = x.size4().expect("upsample input must be [B, C, H, W]");
    x.upsample_nearest2d([2 * h, 2 * w], None::<f64>, None::<f64>)
        .apply(conv)
}

fn up_resnets(
    p: &nn::Path,
    in_ch: i64,
    skip_ch: i64,
    out_ch: i64,
    temb_size: i64,
    cfg: &BlockConfig,
) -> Vec<ResnetBlock> {
    let last = cfg.num_layers - 1;
    (0..cfg.num_layers)
        .map(|i| {
            let c_in = if i == 0 { in_ch } else { out_ch };
            let c_skip = if i == last {
                cfg.last_skip_ch.unwrap_or(skip_ch)
            } else {
                skip_ch
            };
            ResnetBlock::new(
                p / "resnets" / i,
                c_in + c_skip,
                out_ch,
                temb_size,
                cfg.resnet(),
            )
        })
        .collect()
}

fn pop_skip(skips: &mut Vec<Tensor>) -> Tensor {
    skips
        .pop()
        .expect("the expansive path ran out of skip tensors")
}

struct UpBlock {
    resnets: Vec<ResnetBlock>,
    up: Option<nn::Conv2D>,
}

impl UpBlock {
    fn new(
        p: nn::Path,
        in_ch: i64,
        skip_ch: i64,
        out_ch: i64,
        temb_size: i64,
        cfg: BlockConfig,
    ) -> Self {
        UpBlock {
            resnets: up_resnets(&p, in_ch, skip_ch, out_ch, temb_size, &cfg),
            up: cfg
                .add_sampling
                .then(|| conv3x3(&p / "up", out_ch, out_ch, 1)),
        }
    }

    fn forward_t(&self, x: &Tensor, skips: &mut Vec<Tensor>, temb: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for resnet in &self.resnets {
            x = resnet.forward_t(&Tensor::cat(&[&x, &pop_skip(skips)], 1), temb, train);
        }
        match &self.up {
            Some(up) => upsample(&x, up),
            None => x,
        }
    }
}

struct AttentionUpBlock {
    resnets: Vec<ResnetBlock>,
    attns: Vec<AttentionBlock>,
    up: Option<nn::Conv2D>,
}

impl AttentionUpBlock {
    fn new(
        p: nn::Path,
        in_ch: i64,
        skip_ch: i64,
        out_ch: i64,
        temb_size: i64,
        cfg: BlockConfig,
    ) -> Self {
        AttentionUpBlock {
            resnets: up_resnets(&p, in_ch, skip_ch, out_ch, temb_size, &cfg),
            attns: (0..cfg.num_layers)
                .map(|i| AttentionBlock::new(&p / "attns" / i, out_ch, cfg.attention()))
                .collect(),
            up: cfg
                .add_sampling
                .then(|| conv3x3(&p / "up", out_ch, out_ch, 1)),
        }
    }

    fn forward_t(&self, x: &Tensor, skips: &mut Vec<Tensor>, temb: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for (resnet, attn) in self.resnets.iter().zip(&self.attns) {
            let h = resnet.forward_t(&Tensor::cat(&[&x, &pop_skip(skips)], 1), temb, train);
            x = attn.forward_t(&h, train);
        }
        match &self.up {
            Some(up) => upsample(&x, up),
            None => x,
        }
    }
}

struct MidBlock {
    resnets: Vec<ResnetBlock>,
    attn: AttentionBlock,
}

impl MidBlock {
    fn new(p: nn::Path, in_ch: i64, temb_size: i64, cfg: BlockConfig) -> Self {
        MidBlock {
            resnets: resnet_stack(&p, in_ch, in_ch, temb_size, &cfg),
            attn: AttentionBlock::new(&p / "attn", in_ch, cfg.attention()),
        }
    }

    fn forward_t(&self, x: &Tensor, temb: &Tensor, train: bool) -> Tensor {
        let x = self
            .resnets
            .iter()
            .fold(x.shallow_clone(), |x, r| r.forward_t(&x, temb, train));
        self.attn.forward_t(&x, train)
    }
}

struct SinusoidalPosition {
    embedding_dim: i64,
    max_period: f64,
}

impl SinusoidalPosition {
    fn new(embedding_dim: i64) -> Self {
        assert!(
            embedding_dim % 2 == 0,
            "the sinusoidal embedding needs an even dimension"
        );
        SinusoidalPosition {
            embedding_dim,
            max_period: 10_000.0,
        }
    }

    fn forward(&self, t: &Tensor) -> Tensor {
        let half = self.embedding_dim / 2;
        let freqs = (Tensor::arange(half, (Kind::Float, t.device()))
            * (-self.max_period.ln() / half as f64))
            .exp();
        let args = t.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0);
        Tensor::cat(&[args.sin(), args.cos()], 1)
    }
}

#[derive(Debug, Clone, Copy)]
struct UNetConfig {
    base_ch: i64,
    temb_size: i64,
    norm_groups: i64,
    dropout: f64,
    layers_down: i64,
    layers_up: i64,
    num_heads: i64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            base_ch: 128,
            temb_size: 128,
            norm_groups: 32,
            dropout: 0.0,
            layers_down: 2,
            layers_up: 3,
            num_heads: 8,
        }
    }
}

enum DownStage {
    Plain(DownBlock),
    Attention(AttentionDownBlock),
}

enum UpStage {
    Plain(UpBlock),
    Attention(AttentionUpBlock),
}

struct UNet {
    in_ch: i64,
    out_ch: i64,
    cfg: UNetConfig,
    pos: SinusoidalPosition,
    temb1: nn::Linear,
    temb2: nn::Linear,
    conv_in: nn::Conv2D,
    downs: Vec<DownStage>,
    mid: MidBlock,
    ups: Vec<UpStage>,
    norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl UNet {
    /// Output channels and attention of the six contracting levels.
    const MULT: [i64; 6] = [1, 1, 2, 2, 4, 4];
    const ATTN: [bool; 6] = [false, false, false, true, true, false];

    fn new(p: nn::Path, in_ch: i64, out_ch: i64, cfg: UNetConfig) -> Self {
        assert_eq!(
            cfg.layers_up,
            cfg.layers_down + 1,
            "each up block pops one skip per layer"
        );
        let c = cfg.base_ch;
        let outs = Self::MULT.map(|m| m * c);
        let ins = [c, outs[0], outs[1], outs[2], outs[3], outs[4]];
        let temb_dim = 4 * cfg.temb_size;
        let block = |num_layers: i64, add_sampling: bool, last_skip_ch: Option<i64>| BlockConfig {
            dropout: cfg.dropout,
            norm_groups: cfg.norm_groups,
            num_layers,
            add_sampling,
            num_heads: cfg.num_heads,
            last_skip_ch,
        };
        let downs = (0..6)
            .map(|d| {
                let (p, bc) = (&p / "downs" / d, block(cfg.layers_down, d < 5, None));
                if Self::ATTN[d] {
                    DownStage::Attention(AttentionDownBlock::new(p, ins[d], outs[d], temb_dim, bc))
                } else {
                    DownStage::Plain(DownBlock::new(p, ins[d], outs[d], temb_dim, bc))
                }
            })
            .collect();
        let ups = (0..6)
            .rev()
            .enumerate()
            .map(|(j, d)| {
                let prev = if d == 5 { outs[5] } else { outs[d + 1] };
                let (p, bc) = (&p / "ups" / j, block(cfg.layers_up, d > 0, Some(ins[d])));
                if Self::ATTN[d] {
                    UpStage::Attention(AttentionUpBlock::new(
                        p, prev, outs[d], outs[d], temb_dim, bc,
                    ))
                } else {
                    UpStage::Plain(UpBlock::new(p, prev, outs[d], outs[d], temb_dim, bc))
                }
            })
            .collect();
        UNet {
            in_ch,
            out_ch,
            cfg,
            pos: SinusoidalPosition::new(cfg.temb_size),
            temb1: nn::linear(
                &p / "temb1",
                cfg.temb_size,
                temb_dim,
                init::torch_linear(cfg.temb_size),
            ),
            temb2: nn::linear(
                &p / "temb2",
                temb_dim,
                temb_dim,
                init::torch_linear(temb_dim),
            ),
            conv_in: conv3x3(&p / "conv_in", in_ch, c, 1),
            downs,
            mid: MidBlock::new(&p / "mid", outs[5], temb_dim, block(1, false, None)),
            ups,
            norm_out: nn::group_norm(&p / "norm_out", cfg.norm_groups, c, Default::default()),
            conv_out: conv3x3(&p / "conv_out", c, out_ch, 1),
        }
    }

    /// Width of the embedding the blocks receive (`4 * temb_size`).
    fn temb_dim(&self) -> i64 {
        4 * self.cfg.temb_size
    }

    /// Timesteps `[B]` -> embeddings `[B, temb_dim]`.
    fn time_embedding(&self, t: &Tensor) -> Tensor {
        self.pos
            .forward(t)
            .apply(&self.temb1)
            .silu()
            .apply(&self.temb2)
    }

    /// The network on a ready embedding `[B, temb_dim]` (time, plus any conditioning).
    fn forward_with_emb(&self, x: &Tensor, emb: &Tensor, train: bool) -> Tensor {
        let mut x = x.apply(&self.conv_in);
        let mut skips = vec![x.shallow_clone()];
        for stage in &self.downs {
            let (y, hidden) = match stage {
                DownStage::Plain(b) => b.forward_t(&x, emb, train),
                DownStage::Attention(b) => b.forward_t(&x, emb, train),
            };
            x = y;
            skips.extend(hidden);
        }
        x = self.mid.forward_t(&x, emb, train);
        for stage in &self.ups {
            x = match stage {
                UpStage::Plain(b) => b.forward_t(&x, &mut skips, emb, train),
                UpStage::Attention(b) => b.forward_t(&x, &mut skips, emb, train),
            };
        }
        x.apply(&self.norm_out).silu().apply(&self.conv_out)
    }

    fn forward_t(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor {
        self.forward_with_emb(x, &self.time_embedding(t), train)
    }
}

struct NoiseScheduler {
    num_train_timesteps: i64,
    betas: Vec<f64>,
    alphas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    sqrt_alphas_cumprod: Tensor,
    sqrt_one_minus_alphas_cumprod: Tensor,
}

impl NoiseScheduler {
    fn new(num_train_timesteps: i64, beta_start: f64, beta_end: f64, device: Device) -> Self {
        let last = (num_train_timesteps - 1) as f64;
        let betas: Vec<f64> = (0..num_train_timesteps)
            .map(|i| beta_start + (beta_end - beta_start) * i as f64 / last)
            .collect();
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let alphas_cumprod: Vec<f64> = alphas
            .iter()
            .scan(1.0, |prod, a| {
                *prod *= a;
                Some(*prod)
            })
            .collect();
        let table = |f: &dyn Fn(f64) -> f64| {
            let v: Vec<f32> = alphas_cumprod.iter().map(|&a| f(a) as f32).collect();
            Tensor::from_slice(&v).to_device(device)
        };
        NoiseScheduler {
            num_train_timesteps,
            sqrt_alphas_cumprod: table(&|a| a.sqrt()),
            sqrt_one_minus_alphas_cumprod: table(&|a| (1.0 - a).sqrt()),
            betas,
            alphas,
            alphas_cumprod,
        }
    }

    /// Draws x_t ~ q(x_t | x_0) (Ho et al. 2020, eq. 4) for per-sample timesteps `t` `[B]`.
    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Tensor {
        let t = t.to_device(x0.device());
        let a = self
            .sqrt_alphas_cumprod
            .index_select(0, &t)
            .view([-1, 1, 1, 1]);
        let b = self
            .sqrt_one_minus_alphas_cumprod
            .index_select(0, &t)
            .view([-1, 1, 1, 1]);
        a * x0 + b * noise
    }

    /// One reverse step x_t -> x_{t-1} for a whole batch at timestep `t` (Ho et al. 2020,
    /// eq. 11 for the mean, sigma_t^2 = beta_t; no noise at t = 0).
    fn denoise(&self, x_t: &Tensor, eps: &Tensor, t: i64) -> Tensor {
        let i = t as usize;
        let (beta, alpha, abar) = (self.betas[i], self.alphas[i], self.alphas_cumprod[i]);
        let mean = (x_t - eps * (beta / (1.0 - abar).sqrt())) / alpha.sqrt();
        if t > 0 {
            mean + x_t.randn_like() * beta.sqrt()
        } else {
            mean
        }
    }

    /// Addition: a deterministic DDIM step t -> t_prev (Song et al. 2021, eq. 12 with
    /// eta = 0), with the predicted x_0 clipped to [-1, 1]; `t_prev` < 0 returns x_0.
    fn ddim_step(&self, x_t: &Tensor, eps: &Tensor, t: i64, t_prev: i64) -> Tensor {
        let abar = self.alphas_cumprod[t as usize];
        let abar_prev = if t_prev >= 0 {
            self.alphas_cumprod[t_prev as usize]
        } else {
            1.0
        };
        let x0 = ((x_t - eps * (1.0 - abar).sqrt()) / abar.sqrt()).clamp(-1.0, 1.0);
        let eps = (x_t - &x0 * abar.sqrt()) / (1.0 - abar).sqrt();
        x0 * abar_prev.sqrt() + eps * (1.0 - abar_prev).sqrt()
    }
}

fn main() {
    let threads: i32 = std::env::var("HW4_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let device = Device::Cpu;
    // The cpu profile of the notebook (cell "Hyper-parameters"): base width 24, 1x32x128, batch 16.
    let cfg = UNetConfig {
        base_ch: 24,
        temb_size: 32,
        norm_groups: 8,
        layers_down: 1,
        layers_up: 2,
        num_heads: 4,
        ..Default::default()
    };
    let batch: i64 = std::env::var("DDPM_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let vs = nn::VarStore::new(device);
    let net = UNet::new(vs.root(), 1, 1, cfg);
    let mut opt = nn::AdamW {
        wd: 0.0,
        ..Default::default()
    }
    .build(&vs, 1e-3)
    .unwrap();
    let sched = NoiseScheduler::new(1000, 1e-4, 0.02, device);
    let x0 = Tensor::rand([batch, 1, 32, 128], (Kind::Float, device)) * 2.0 - 1.0;
    let mut step = || {
        let t = Tensor::randint(1000, [batch], (Kind::Int64, device));
        let noise = x0.randn_like();
        let loss = net
            .forward_t(&sched.add_noise(&x0, &noise, &t), &t, true)
            .mse_loss(&noise, Reduction::Mean);
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(1.0);
        opt.step();
        loss.double_value(&[])
    };
    for _ in 0..3 {
        step();
    }
    let n: u32 = std::env::var("DDPM_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let t0 = Instant::now();
    for _ in 0..n {
        step();
    }
    let secs = t0.elapsed().as_secs_f64() / n as f64;
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    println!("{{\"bench\": \"unet_train_step\", \"seconds\": {secs}, \"unit\": \"step\", \"params\": {params}}}");
}
