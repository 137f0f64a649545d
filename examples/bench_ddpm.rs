//! One U-Net training step in tch (the Rust side of bench/ddpm.py): the U-Net, noise
//! scheduler and training step of notebooks/DDPM.ipynb, included from the notebook's
//! items (build.rs writes them to `OUT_DIR/nb_DDPM_items.rs`), at the notebook's cpu
//! profile configuration and batch. Prints, after a warm-up,
//! `{"bench": "unet_train_step", "seconds": ..., "unit": "step", "params": ..., "config": {...}}`;
//! `config` is what bench/run.py hands the PyTorch side, so both build the same model.
#![allow(dead_code, unused_imports, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/nb_DDPM_items.rs"));

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    tch::set_num_threads(env_or("HW4_THREADS", 2));
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
    let (batch, height, width): (i64, i64, i64) = (env_or("DDPM_BATCH", 16), 32, 128);
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
    for _ in 0..3 {
        step();
    }
    let n: u32 = env_or("DDPM_STEPS", 10);
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
    let config = hw4::serde_json::json!({
        "in_ch": 1, "out_ch": 1, "base": cfg.base_ch, "temb_size": cfg.temb_size,
        "norm_groups": cfg.norm_groups, "layers_down": cfg.layers_down, "layers_up": cfg.layers_up,
        "num_heads": cfg.num_heads, "batch": batch, "height": height, "width": width,
        "num_train_timesteps": sched_cfg.num_train_timesteps,
        "beta_start": sched_cfg.beta_start, "beta_end": sched_cfg.beta_end,
    });
    println!("{{\"bench\": \"unet_train_step\", \"seconds\": {secs}, \"unit\": \"step\", \"params\": {params}, \"config\": {config}}}");
}
