//! One VAE epoch and one GAN epoch in tch, the same work as bench/gan_vae.py: the
//! models of notebooks/GAN-VAE.ipynb at the cpu profile's configuration (50,000 images
//! 1x28x28, batch 64; VAE hidden 512, latent 20, Adam 1e-3; DCGAN with 32 feature
//! maps, latent 64, Adam(2e-4, beta1 0.5)). Prints JSON lines
//! `{"bench": "vae_epoch"|"gan_epoch", "seconds": ..., "unit": "epoch"}` after a warm-up.
//! Run through `python bench/run.py gan_vae`.

use hw4::data;
use hw4::tch::nn::{self, ModuleT, OptimizerConfig};
use hw4::tch::{self, Device, Kind, Reduction, Tensor};
use std::time::Instant;

const N: usize = 50_000;
const BATCH: usize = 64;

// Same as the notebook's Encoder / Decoder / Vae cells.
#[derive(Debug)]
struct Vae {
    enc1: nn::Linear,
    enc2: nn::Linear,
    mean: nn::Linear,
    log_var: nn::Linear,
    dec1: nn::Linear,
    dec2: nn::Linear,
    out: nn::Linear,
}

impl Vae {
    fn new(p: nn::Path, input_dim: i64, hidden: i64, latent: i64) -> Self {
        let l = |name: &str, i, o| nn::linear(&p / name, i, o, Default::default());
        Vae {
            enc1: l("enc1", input_dim, hidden),
            enc2: l("enc2", hidden, hidden),
            mean: l("mean", hidden, latent),
            log_var: l("log_var", hidden, latent),
            dec1: l("dec1", latent, hidden),
            dec2: l("dec2", hidden, hidden),
            out: l("out", hidden, input_dim),
        }
    }

    fn loss(&self, x: &Tensor) -> Tensor {
        let x = x.flatten(1, -1);
        let h = x.apply(&self.enc1).relu().apply(&self.enc2).relu();
        let (mean, log_var) = (h.apply(&self.mean), h.apply(&self.log_var));
        let z = &mean + (&log_var * 0.5).exp() * mean.randn_like();
        let logits = z
            .apply(&self.dec1)
            .relu()
            .apply(&self.dec2)
            .relu()
            .apply(&self.out);
        let rec = logits
            .binary_cross_entropy_with_logits::<Tensor>(&x, None, None, Reduction::None)
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float);
        let kl = ((log_var.exp() + mean.square() - 1.0 - &log_var) * 0.5)
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float);
        rec + kl
    }
}

fn dcgan_init() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

fn dcgan_bn() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}

fn lin_cfg() -> nn::LinearConfig {
    nn::LinearConfig {
        ws_init: dcgan_init(),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    }
}

// Same as the notebook's Generator / Discriminator cell.
#[derive(Debug)]
struct Generator {
    fc: nn::Linear,
    bn0: nn::BatchNorm,
    up1: nn::ConvTranspose2D,
    bn1: nn::BatchNorm,
    up2: nn::ConvTranspose2D,
    c: i64,
}

impl Generator {
    fn new(p: nn::Path, latent: i64, c: i64) -> Self {
        let up = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            ws_init: dcgan_init(),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        Generator {
            fc: nn::linear(&p / "fc", latent, 2 * c * 49, lin_cfg()),
            bn0: nn::batch_norm1d(&p / "bn0", 2 * c * 49, dcgan_bn()),
            up1: nn::conv_transpose2d(&p / "up1", 2 * c, c, 4, up),
            bn1: nn::batch_norm2d(&p / "bn1", c, dcgan_bn()),
            up2: nn::conv_transpose2d(&p / "up2", c, 1, 4, up),
            c,
        }
    }
}

impl ModuleT for Generator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let h = z
            .apply(&self.fc)
            .apply_t(&self.bn0, train)
            .relu()
            .view([-1, 2 * self.c, 7, 7]);
        let h = h
            .apply(&self.up1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.up2);
        (h.tanh() + 1.0) * 0.5
    }
}

#[derive(Debug)]
struct Discriminator {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc: nn::Linear,
}

impl Discriminator {
    fn new(p: nn::Path, c: i64) -> Self {
        let conv = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ws_init: dcgan_init(),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        Discriminator {
            conv1: nn::conv2d(&p / "conv1", 1, c, 4, conv),
            conv2: nn::conv2d(&p / "conv2", c, 2 * c, 4, conv),
            bn2: nn::batch_norm2d(&p / "bn2", 2 * c, dcgan_bn()),
            fc: nn::linear(&p / "fc", 2 * c * 49, 1, lin_cfg()),
        }
    }
}

fn leaky(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

impl ModuleT for Discriminator {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = leaky(&(x * 2.0 - 1.0).apply(&self.conv1));
        leaky(&h.apply(&self.conv2).apply_t(&self.bn2, train))
            .flatten(1, -1)
            .apply(&self.fc)
            .squeeze_dim(1)
    }
}

fn bce(logits: &Tensor, target: f64) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(
        &logits.full_like(target),
        None,
        None,
        Reduction::Mean,
    )
}

fn main() -> hw4::Result<()> {
    let threads: i32 = std::env::var("HW4_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads);
    hw4::seed(0);
    let data = Tensor::rand([N as i64, 1, 28, 28], (Kind::Float, Device::Cpu));

    let vs = nn::VarStore::new(Device::Cpu);
    let vae = Vae::new(vs.root() / "vae", 784, 512, 20);
    let mut opt = nn::Adam::default().build(&vs, 1e-3)?;
    let vae_epoch = |opt: &mut nn::Optimizer, epoch: u64, limit: usize| {
        for idx in data::batches(N, BATCH, epoch).iter().take(limit) {
            let loss = vae.loss(&data.index_select(0, idx));
            opt.backward_step(&loss);
            loss.double_value(&[]);
        }
    };
    vae_epoch(&mut opt, 0, 20);
    let t0 = Instant::now();
    vae_epoch(&mut opt, 1, usize::MAX);
    let secs = t0.elapsed().as_secs_f64();
    println!(r#"{{"bench": "vae_epoch", "seconds": {secs}, "unit": "epoch"}}"#);

    let (g_vs, d_vs) = (
        nn::VarStore::new(Device::Cpu),
        nn::VarStore::new(Device::Cpu),
    );
    let g = Generator::new(g_vs.root() / "generator", 64, 32);
    let d = Discriminator::new(d_vs.root() / "discriminator", 32);
    let adam = nn::Adam {
        beta1: 0.5,
        ..Default::default()
    };
    let mut opt_g = adam.build(&g_vs, 2e-4)?;
    let mut opt_d = adam.build(&d_vs, 2e-4)?;
    let mut gan_epoch = |epoch: u64, limit: usize| {
        for idx in data::batches(N, BATCH, epoch).iter().take(limit) {
            let real = data.index_select(0, idx);
            let z = Tensor::randn([real.size()[0], 64], (Kind::Float, Device::Cpu));
            let fake = g.forward_t(&z, true);
            let (lr, lf) = (d.forward_t(&real, true), d.forward_t(&fake.detach(), true));
            let loss_d = bce(&lr, 1.0) + bce(&lf, 0.0);
            opt_d.backward_step(&loss_d);
            let loss_g = bce(&d.forward_t(&fake, true), 1.0);
            opt_g.backward_step(&loss_g);
            loss_d.double_value(&[]);
            loss_g.double_value(&[]);
            lr.sigmoid().mean(Kind::Float).double_value(&[]);
            lf.sigmoid().mean(Kind::Float).double_value(&[]);
        }
    };
    gan_epoch(0, 10);
    let t0 = Instant::now();
    gan_epoch(1, usize::MAX);
    let secs = t0.elapsed().as_secs_f64();
    println!(r#"{{"bench": "gan_epoch", "seconds": {secs}, "unit": "epoch"}}"#);
    Ok(())
}
