//! A development tool: trains a GAN on notebooks/GAN-VAE.ipynb's split (the notebook's
//! items, included from `OUT_DIR/nb_GAN-VAE_items.rs`) with one design switch, then
//! scores the averaged generator's samples as the notebook does: the classifier
//! two-sample test against the validation images (the notebook's critic and seeds) and
//! the Fréchet distance. Variants run side by side, one process (and one thread) each:
//!
//! ```sh
//! HW4_PROFILE=cpu HW4_THREADS=1 HW4_OUTPUT_DIR=/tmp/g/b GAMMA=2 cargo run --release --example gan_variant -- b
//! ```
//! The networks, the R1 penalty and the moving average are the notebook's own; the switches
//! (environment) are its settings: `GAMMA` (R1 weight, 0 = none), `EPOCHS`, `LR`, `G_CH`, `D_CH`,
//! `SPLITS`. (The variants of the README's development note that changed the networks
//! themselves were switches in this file before the notebook adopted the upsampling generator
//! and the three-convolution discriminator.) One JSON line on stdout at the end.
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_GAN-VAE_items.rs"));

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() -> Result<()> {
    let variant = std::env::args().nth(1).unwrap_or_else(|| "base".into());
    let splits: usize = env_or("SPLITS", 5);
    let s = Session::from_env("GAN-VAE")?;
    let mnist = data::load_mnist()?;
    let split_seed = s.seed(5).next_u64();
    let (train_idx, valid_idx) = data::split(mnist.len(), 10_000, split_seed);
    let (train_x, train_y) = mnist.subset(&train_idx);
    let (valid_x, valid_y) = mnist.subset(&valid_idx);
    let train_loader = Loader::new(&train_x, 64, Some(s.seed(6).next_u64()));

    s.seed(16);
    let cfg = GanConfig {
        g_channels: env_or("G_CH", 16),
        d_channels: env_or("D_CH", 32),
        learning_rate: env_or("LR", 4e-4),
        num_epochs: env_or("EPOCHS", 16),
        pac: 2,
        r1_gamma: env_or("GAMMA", 2.0),
        ..Default::default()
    };
    let run = train_gan(&s, &train_loader, &cfg)?;
    let train_s: f64 = run.epoch_seconds.iter().sum();
    s.seed(18);
    let samples = tch::no_grad(|| {
        let z = Tensor::randn([10_000, cfg.latent_dim], (Kind::Float, s.device));
        run.ema.generator.forward_t(&z, false)
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
        epochs: 80,
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
        r#"{{"variant": "{variant}", "gamma": {}, "epochs": {}, "lr": {}, "g_ch": {}, "d_ch": {}, "train_s": {train_s:.1}, "c2st": {:.4}, "c2st_std": {:.4}, "runs": [{}], "best_epochs": {best:?}, "c2st_q8": {:.4}, "fd": {fd:.2}, "digits": {counts:?}}}"#,
        cfg.r1_gamma,
        cfg.num_epochs,
        cfg.learning_rate,
        cfg.g_channels,
        cfg.d_channels,
        r.mean,
        r.std,
        runs.join(", "),
        rq.mean
    );
    Ok(())
}
