//! A development tool: trains a GAN on notebooks/GAN-VAE.ipynb's split (the notebook's
//! items, included from `OUT_DIR/nb_GAN-VAE_items.rs`) with one design switch, then
//! scores the averaged generator's samples as the notebook does: the classifier
//! two-sample test against the validation images (the notebook's critic and seeds) and
//! the Fréchet distance. Variants run side by side, one process (and one thread) each:
//!
//! ```sh
//! HW4_PROFILE=cpu HW4_THREADS=1 HW4_OUTPUT_DIR=/tmp/g/base cargo run --release --example gan_variant -- base
//! ```
//! Switches (environment): `G=base|up` (the notebook's generator, or nearest upsampling
//! and 3x3 convolutions with a third convolution at 28x28), `D=base|deep` (the notebook's
//! discriminator, or three convolutions), `R1=gamma` (R1 penalty on real packs, Mescheder
//! et al. 2018, every 4th step), `EPOCHS`, `LR`, `G_CH`, `D_CH`, `SPLITS`.
//! One JSON line on stdout at the end.
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_GAN-VAE_items.rs"));

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Nearest upsampling and 3x3 convolutions (no transposed convolutions, Odena et al. 2016).
#[derive(Debug)]
struct UpGenerator {
    fc: nn::Linear,
    bn0: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    out: nn::Conv2D,
    channels: i64,
}

impl UpGenerator {
    fn new(p: nn::Path, latent_dim: i64, channels: i64) -> Self {
        let lin = nn::LinearConfig {
            ws_init: dcgan_init(),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let c3 = nn::ConvConfig {
            padding: 1,
            ws_init: dcgan_init(),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        UpGenerator {
            fc: nn::linear(&p / "fc", latent_dim, 4 * channels * 49, lin),
            bn0: nn::batch_norm1d(&p / "bn0", 4 * channels * 49, dcgan_bn()),
            conv1: nn::conv2d(&p / "conv1", 4 * channels, 2 * channels, 3, c3),
            bn1: nn::batch_norm2d(&p / "bn1", 2 * channels, dcgan_bn()),
            conv2: nn::conv2d(&p / "conv2", 2 * channels, channels, 3, c3),
            bn2: nn::batch_norm2d(&p / "bn2", channels, dcgan_bn()),
            out: nn::conv2d(&p / "out", channels, 1, 3, c3),
            channels,
        }
    }
}

impl ModuleT for UpGenerator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let h =
            z.apply(&self.fc)
                .apply_t(&self.bn0, train)
                .relu()
                .view([-1, 4 * self.channels, 7, 7]);
        let h = h
            .upsample_nearest2d([14, 14], None, None)
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu();
        let h = h
            .upsample_nearest2d([28, 28], None, None)
            .apply(&self.conv2)
            .apply_t(&self.bn2, train)
            .relu()
            .apply(&self.out);
        (h.tanh() + 1.0) * 0.5
    }
}

/// Three strided convolutions, no batch norm (for the R1 penalty).
#[derive(Debug)]
struct DeepDiscriminator {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    conv3: nn::Conv2D,
    fc: nn::Linear,
    pac: i64,
}

impl DeepDiscriminator {
    fn new(p: nn::Path, channels: i64, pac: i64) -> Self {
        let lin = nn::LinearConfig {
            ws_init: dcgan_init(),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        DeepDiscriminator {
            conv1: nn::conv2d(&p / "conv1", pac, channels, 4, dcgan_conv()),
            conv2: nn::conv2d(&p / "conv2", channels, 2 * channels, 4, dcgan_conv()),
            conv3: nn::conv2d(&p / "conv3", 2 * channels, 4 * channels, 3, dcgan_conv()),
            fc: nn::linear(&p / "fc", 4 * channels * 16, 1, lin),
            pac,
        }
    }
}

impl ModuleT for DeepDiscriminator {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        let (n, c, h, w) = x.size4().unwrap();
        (x * 2.0 - 1.0)
            .view([n / self.pac, c * self.pac, h, w])
            .apply(&self.conv1)
            .leaky_relu_with(0.2)
            .apply(&self.conv2)
            .leaky_relu_with(0.2)
            .apply(&self.conv3)
            .leaky_relu_with(0.2)
            .flatten(1, -1)
            .apply(&self.fc)
            .squeeze_dim(1)
    }
}

fn make_g(p: nn::Path, kind: &str, ch: i64) -> Box<dyn ModuleT> {
    match kind {
        "up" => Box::new(UpGenerator::new(p, 64, ch)),
        _ => Box::new(Generator::new(p, 64, (1, 28, 28), ch)),
    }
}

fn main() -> Result<()> {
    let variant = std::env::args().nth(1).unwrap_or_else(|| "base".into());
    let (g_kind, d_kind): (String, String) =
        (env_or("G", "base".into()), env_or("D", "base".into()));
    let r1: f64 = env_or("R1", 0.0);
    let epochs: usize = env_or("EPOCHS", 16);
    let lr: f64 = env_or("LR", 4e-4);
    let g_ch: i64 = env_or("G_CH", 32);
    let d_ch: i64 = env_or("D_CH", 32);
    let splits: usize = env_or("SPLITS", 5);
    let s = Session::from_env("GAN-VAE")?;
    let mnist = data::load_mnist()?;
    let split_seed = s.seed(5).next_u64();
    let (train_idx, valid_idx) = data::split(mnist.len(), 10_000, split_seed);
    let (train_x, train_y) = mnist.subset(&train_idx);
    let (valid_x, valid_y) = mnist.subset(&valid_idx);
    let train_loader = Loader::new(&train_x, 64, Some(s.seed(6).next_u64()));

    s.seed(16);
    let g_vs = nn::VarStore::new(s.device);
    let d_vs = nn::VarStore::new(s.device);
    let g = make_g(g_vs.root() / "generator", &g_kind, g_ch);
    let d: Box<dyn ModuleT> = match d_kind.as_str() {
        "deep" => Box::new(DeepDiscriminator::new(
            d_vs.root() / "discriminator",
            d_ch,
            2,
        )),
        _ => Box::new(Discriminator::new(
            d_vs.root() / "discriminator",
            (1, 28, 28),
            d_ch,
            2,
        )),
    };
    let mut ema_vs = nn::VarStore::new(s.device);
    let ema_g = make_g(ema_vs.root() / "generator", &g_kind, g_ch);
    ema_vs.copy(&g_vs)?;
    let adam = nn::Adam {
        beta1: 0.5,
        beta2: 0.999,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    };
    let mut opt_g = hw4::optim::Adam::new(&g_vs, adam, lr);
    let mut opt_d = hw4::optim::Adam::new(&d_vs, adam, lr);
    let mut step = 0usize;
    let t_all = std::time::Instant::now();
    for epoch in 1..=epochs {
        let t0 = std::time::Instant::now();
        let (mut sd, mut sg) = (0.0, 0.0);
        let batches = train_loader.epoch(epoch);
        for real in &batches {
            let z = Tensor::randn([real.size()[0], 64], (Kind::Float, s.device));
            let fake = g.forward_t(&z, true);
            let lr_ = d.forward_t(real, true);
            let lf = d.forward_t(&fake.detach(), true);
            let mut loss_d = bce_logits(&lr_, 1.0) + bce_logits(&lf, 0.0);
            if r1 > 0.0 && step % 4 == 0 {
                // R1 (Mescheder et al. 2018, eq. 9), lazy every 4 steps (Karras et al. 2020).
                let x = real.detach().set_requires_grad(true);
                let out = d.forward_t(&x, true).sum(Kind::Float);
                let grad = &Tensor::run_backward(&[out], &[&x], true, true)[0];
                let pen = grad
                    .square()
                    .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
                    .mean(Kind::Float);
                loss_d = loss_d + pen * (r1 / 2.0 * 4.0 * 2.0);
            }
            opt_d.backward_step(&loss_d);
            let loss_g = bce_logits(&d.forward_t(&fake, true), 1.0);
            opt_g.backward_step(&loss_g);
            step += 1;
            let beta = 0.999f64.min((1.0 + step as f64) / (10.0 + step as f64));
            let av = ema_vs.variables();
            tch::no_grad(|| {
                for (name, w) in g_vs.variables() {
                    let mut a = av[&name].shallow_clone();
                    if w.is_floating_point() {
                        a.copy_(&(&a * beta + &w * (1.0 - beta)));
                    } else {
                        a.copy_(&w);
                    }
                }
            });
            sd += loss_d.double_value(&[]);
            sg += loss_g.double_value(&[]);
        }
        let nb = batches.len() as f64;
        eprintln!(
            "{variant} epoch {epoch}: D {:.4} G {:.4} {:.1} s",
            sd / nb,
            sg / nb,
            t0.elapsed().as_secs_f64()
        );
    }
    let train_s = t_all.elapsed().as_secs_f64();
    s.seed(18);
    let samples = tch::no_grad(|| {
        let z = Tensor::randn([10_000, 64], (Kind::Float, s.device));
        ema_g.forward_t(&z, false)
    });
    show::images(
        &s,
        &format!("gan_{variant}"),
        &samples.narrow(0, 0, 64),
        &ImageOpts {
            ncol: 16,
            scale: 2,
            ..Default::default()
        },
    )?;
    let c2st_cfg = eval::two_sample::TwoSampleConfig {
        channels: 16,
        epochs: 40,
        seed: s.seed(20).next_u64(),
        ..Default::default()
    };
    let r = eval::two_sample::test_repeated(&valid_x, &samples, &c2st_cfg, splits, &train_critic)?;
    let q8 = (&samples * 255.0).round() / 255.0;
    let rq =
        eval::two_sample::test_repeated(&valid_x, &q8, &c2st_cfg, splits.min(2), &train_critic)?;
    let digit_cfg = eval::digits::DigitConfig {
        seed: s.seed(21).next_u64(),
        ..eval::digits::DigitConfig::for_profile(s.profile)
    };
    let clf = eval::digits::DigitClassifier::train_or_load(
        &s,
        (&train_x, &train_y),
        (&valid_x, &valid_y),
        &digit_cfg,
    )?;
    let fd = eval::frechet::distance(&clf.features(&valid_x), &clf.features(&samples))?;
    let counts = Vec::<i64>::try_from(clf.predict(&samples).bincount::<Tensor>(None, 10))?;
    let runs: Vec<String> = r
        .runs
        .iter()
        .map(|x| format!("{:.4}", x.accuracy))
        .collect();
    let best: Vec<usize> = r.runs.iter().map(|x| x.best_epoch).collect();
    println!(
        r#"{{"variant": "{variant}", "g": "{g_kind}", "d": "{d_kind}", "r1": {r1}, "epochs": {epochs}, "lr": {lr}, "g_ch": {g_ch}, "d_ch": {d_ch}, "train_s": {train_s:.1}, "c2st": {:.4}, "c2st_std": {:.4}, "runs": [{}], "best_epochs": {best:?}, "c2st_q8": {:.4}, "fd": {fd:.2}, "digits": {counts:?}}}"#,
        r.mean,
        r.std,
        runs.join(", "),
        rq.mean
    );
    Ok(())
}
