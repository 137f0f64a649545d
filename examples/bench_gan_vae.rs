//! One VAE epoch and one GAN epoch in tch, the same work as bench/gan_vae.py: the
//! models and losses of notebooks/GAN-VAE.ipynb, included from the notebook's items
//! (build.rs writes them to `OUT_DIR/nb_GAN-VAE_items.rs`), at the cpu profile's
//! configuration (50,000 images 1x28x28, batch 64; VAE hidden 512, latent 20, Adam 1e-3;
//! the GAN's generator with 16 feature maps at 28x28 (nearest upsampling and 3x3
//! convolutions), latent 64, the discriminator with 32 feature maps judging packs of 2 images
//! and its R1 penalty (gamma 2, every 4th step), Adam(4e-4, beta1 0.5), the generator's
//! moving average updated after every step). Prints JSON lines
//! `{"bench": "vae_epoch"|"gan_epoch", "seconds": ..., "unit": "epoch"}` after a warm-up.
//! Run through `python bench/run.py gan_vae`.
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_GAN-VAE_items.rs"));

const N: usize = 50_000;
const BATCH: usize = 64;

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
    let vae_step_loss = |x: &Tensor| {
        let (logits, mean, log_var) = vae.forward_logits(x);
        vae_loss(&logits, x, &mean, &log_var).0
    };
    // The notebooks' optimiser (hw4::optim::Adam: LibTorch's Adam step, with a saveable state).
    let mut opt = hw4::optim::Adam::new(&vs, nn::Adam::default(), 1e-3);
    let vae_epoch = |opt: &mut hw4::optim::Adam, epoch: u64, limit: usize| {
        for idx in data::batches(N, BATCH, epoch).iter().take(limit) {
            let loss = vae_step_loss(&data.index_select(0, idx));
            opt.backward_step(&loss);
            loss.double_value(&[]);
        }
    };
    vae_epoch(&mut opt, 0, 20);
    let t0 = std::time::Instant::now();
    vae_epoch(&mut opt, 1, usize::MAX);
    let secs = t0.elapsed().as_secs_f64();
    println!(r#"{{"bench": "vae_epoch", "seconds": {secs}, "unit": "epoch"}}"#);

    let (g_vs, d_vs) = (
        nn::VarStore::new(Device::Cpu),
        nn::VarStore::new(Device::Cpu),
    );
    let g = Generator::new(g_vs.root() / "generator", 64, (1, 28, 28), 16);
    let d = Discriminator::new(d_vs.root() / "discriminator", (1, 28, 28), 32, 2);
    let adam = nn::Adam {
        beta1: 0.5,
        ..Default::default()
    };
    let mut opt_g = hw4::optim::Adam::new(&g_vs, adam, 4e-4);
    let mut opt_d = hw4::optim::Adam::new(&d_vs, adam, 4e-4);
    let mut ema = GeneratorEma::new(&g_vs, 64, (1, 28, 28), 16, 0.999)?;
    let (r1_gamma, r1_every) = (2.0, 4);
    let mut gan_epoch = |epoch: u64, limit: usize| {
        for (i, idx) in data::batches(N, BATCH, epoch)
            .iter()
            .take(limit)
            .enumerate()
        {
            let real = data.index_select(0, idx);
            let z = Tensor::randn([real.size()[0], 64], (Kind::Float, Device::Cpu));
            let fake = g.forward_t(&z, true);
            let (lr, lf) = (d.forward_t(&real, true), d.forward_t(&fake.detach(), true));
            let loss_d = bce_logits(&lr, 1.0) + bce_logits(&lf, 0.0);
            if i % r1_every == 0 {
                let penalty = r1_penalty(&d, &real) * (r1_gamma / 2.0 * r1_every as f64);
                opt_d.backward_step(&(&loss_d + penalty));
            } else {
                opt_d.backward_step(&loss_d);
            }
            let loss_g = bce_logits(&d.forward_t(&fake, true), 1.0);
            opt_g.backward_step(&loss_g);
            ema.update(&g_vs);
            loss_d.double_value(&[]);
            loss_g.double_value(&[]);
            lr.sigmoid().mean(Kind::Float).double_value(&[]);
            lf.sigmoid().mean(Kind::Float).double_value(&[]);
        }
    };
    gan_epoch(0, 10);
    let t0 = std::time::Instant::now();
    gan_epoch(1, usize::MAX);
    let secs = t0.elapsed().as_secs_f64();
    println!(r#"{{"bench": "gan_epoch", "seconds": {secs}, "unit": "epoch"}}"#);
    Ok(())
}
