//! One U-Net training step in tch (the Rust side of bench/ddpm.py): the U-Net, noise
//! scheduler and training step of notebooks/DDPM.ipynb, included from the notebook's
//! items (build.rs writes them to `OUT_DIR/nb_DDPM_items.rs`), at the notebook's cpu
//! profile configuration and batch. Prints, after a warm-up,
//! `{"bench": "unet_train_step", "seconds": ..., "unit": "step", "params": ..., "config": {...}}`;
//! `config` is what bench/run.py hands the PyTorch side, so both build the same model.
//! Then the same for one training step of part 3's conditional U-Net (`CondUNet`), as
//! `CondDdpm::train` takes it: `{"bench": "cond_unet_train_step", ...}`, whose config keys
//! start with `cond_` (bench/run.py merges the configs of all lines).
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_DDPM_items.rs"));

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds per call of `step`: three warm-up calls, then the mean of `n` timed ones.
fn seconds_per_step(step: &mut dyn FnMut() -> f64, n: u32) -> f64 {
    for _ in 0..3 {
        step();
    }
    let t0 = Instant::now();
    for _ in 0..n {
        step();
    }
    t0.elapsed().as_secs_f64() / n as f64
}

fn n_trainable(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

fn main() {
    tch::set_num_threads(env_or("HW4_THREADS", 2));
    tch::manual_seed(0);
    let device = Device::Cpu;
    // The cpu profile of the notebook: its U-Net preset and image size, batch 16, and the
    // session's mixed-precision switch as the notebook sets it (HW4_BF16; see hw4::cpu).
    let bf16 = hw4::cpu::bf16_from_env().unwrap_or_else(|e| {
        eprintln!("bench_ddpm: {e}");
        std::process::exit(2)
    });
    let cfg = UNetConfig {
        bf16,
        ..UNetConfig::cpu()
    };
    let (height, width) = image_size(Profile::Cpu);
    let batch: i64 = env_or("DDPM_BATCH", 16);
    let sched_cfg = SchedulerConfig::default();
    let vs = nn::VarStore::new(device);
    let net = UNet::new(vs.root(), 1, 1, cfg);
    let mut opt = optim::Adam::new(
        &vs,
        nn::AdamW {
            wd: 0.0,
            ..Default::default()
        },
        1e-3,
    );
    let sched = NoiseScheduler::new(sched_cfg, device);
    let x0 = Tensor::rand([batch, 1, height, width], (Kind::Float, device)) * 2.0 - 1.0;
    let mut step = || {
        training_step(
            &sched,
            &mut opt,
            None,
            &x0,
            &|x_t, t| net.forward_t(x_t, t, true),
            &|pred, noise, _| {
                let loss = mse(pred, noise);
                (loss.shallow_clone(), loss)
            },
        )
    };
    let n: u32 = env_or("DDPM_STEPS", 10);
    let secs = seconds_per_step(&mut step, n);
    let params = n_trainable(&vs);
    let config = hw4::serde_json::json!({
        "in_ch": 1, "out_ch": 1, "base": cfg.base_ch, "temb_size": cfg.temb_size,
        "norm_groups": cfg.norm_groups, "layers_down": cfg.layers_down, "layers_up": cfg.layers_up,
        "num_heads": cfg.num_heads, "bf16": cfg.bf16, "batch": batch, "height": height, "width": width,
        "num_train_timesteps": sched_cfg.num_train_timesteps,
        "beta_start": sched_cfg.beta_start, "beta_end": sched_cfg.beta_end,
    });
    println!("{{\"bench\": \"unet_train_step\", \"seconds\": {secs}, \"unit\": \"step\", \"params\": {params}, \"config\": {config}}}");
    cond_unet_train_step(device, batch, n, bf16);
}

/// One training step of the conditional U-Net at the notebook's cpu profile (`CondConfig::cpu`,
/// `CondTrainConfig::cpu`), done as `CondDdpm::train` does it: the condition of a
/// fraction `p_uncond` of the batch replaced by the null one, the notebook's `training_step`
/// with the min-SNR-gamma weighted loss, AdamW through the notebook's `optim::Adam`. The
/// images, character codes and glyph templates are random (the data are not what is timed);
/// the EMA update and the learning-rate schedule of `train` are left out (the rate is the peak).
/// With self-conditioning, every other step first runs a pass without gradient for x_0.
fn cond_unet_train_step(device: Device, batch: i64, n: u32, bf16: bool) {
    tch::manual_seed(1);
    let cfg = CondConfig::cpu();
    let cfg = CondConfig {
        unet: UNetConfig { bf16, ..cfg.unet },
        ..cfg
    };
    let train_cfg = CondTrainConfig::cpu();
    // The captchas' alphabet (`alphabet.len()` in the notebook, read from the labels).
    let vocab = data::Alphabet::new(data::CAPTCHA_ALPHABET).len() as i64;
    let (height, width) = image_size(Profile::Cpu);
    let size: [i64; 3] = [1, height, width];
    let (lr, p_uncond) = (train_cfg.lr, train_cfg.p_uncond);
    let min_snr_gamma = train_cfg
        .min_snr_gamma
        .expect("the cpu profile weights by min-SNR");
    let sched_cfg = SchedulerConfig {
        num_train_timesteps: train_cfg.num_timesteps,
        ..SchedulerConfig::default()
    };
    let vs = nn::VarStore::new(device);
    let net = CondUNet::new(vs.root(), size, vocab, cfg);
    let mut opt = optim::Adam::new(
        &vs,
        nn::AdamW {
            wd: 0.0,
            ..Default::default()
        },
        lr,
    );
    let sched = NoiseScheduler::new(sched_cfg, device);
    let loss_weight = min_snr_weights(&sched, Some(min_snr_gamma), device);
    let [c, h, w] = size;
    let x0 = Tensor::rand([batch, c, h, w], (Kind::Float, device)) * 2.0 - 1.0;
    let cond = TextCondition {
        codes: Tensor::randint(vocab, [batch, cfg.text_len], (Kind::Int64, device)),
        template: Tensor::rand([batch, c, h, w], (Kind::Float, device)) * 2.0 - 1.0,
    };
    // Self-conditioning's first pass runs for half of the batches, as in `train`; here on every
    // other step, so that the mean over an even number of steps does not depend on a coin.
    let mut k = 0u32;
    let mut step = || {
        let dropped = Tensor::rand([batch], (Kind::Float, device)).lt(p_uncond);
        let y = cond.drop_where(&dropped, &net.null(batch, size, device));
        let first_pass = cfg.self_cond && k % 2 == 1;
        k += 1;
        training_step(
            &sched,
            &mut opt,
            Some(lr),
            &x0,
            &|x_t, t| {
                let prev = first_pass.then(|| {
                    tch::no_grad(|| predict_x0(&sched, x_t, &net.forward_t(x_t, t, &y, true), t))
                });
                net.forward_sc(x_t, t, &y, prev.as_ref(), true)
            },
            &|pred, noise, t| {
                let err =
                    (pred - noise)
                        .square()
                        .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float);
                (
                    (&err * loss_weight.index_select(0, t)).mean(Kind::Float),
                    err.mean(Kind::Float),
                )
            },
        )
    };
    let secs = seconds_per_step(&mut step, n);
    let params = n_trainable(&vs);
    let u = cfg.unet;
    let config = hw4::serde_json::json!({
        "cond_in_ch": c, "cond_base": u.base_ch, "cond_temb_size": u.temb_size,
        "cond_norm_groups": u.norm_groups, "cond_layers_down": u.layers_down,
        "cond_layers_up": u.layers_up, "cond_num_heads": u.num_heads, "cond_bf16": u.bf16,
        "cond_text_len": cfg.text_len, "cond_char_dim": cfg.char_dim, "cond_vocab": vocab,
        "cond_batch": batch, "cond_height": h, "cond_width": w,
        "cond_num_train_timesteps": sched_cfg.num_train_timesteps,
        "cond_beta_start": sched_cfg.beta_start, "cond_beta_end": sched_cfg.beta_end,
        "cond_lr": lr, "cond_p_uncond": p_uncond, "cond_min_snr_gamma": min_snr_gamma,
        "cond_self_cond": cfg.self_cond,
        "cond_params": params,
    });
    println!("{{\"bench\": \"cond_unet_train_step\", \"seconds\": {secs}, \"unit\": \"step\", \"params\": {params}, \"config\": {config}}}");
}
