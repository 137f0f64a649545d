//! A training run killed (SIGKILL) mid-epoch and re-run with `HW4_TRAIN=auto` resumes
//! from its last checkpoint and ends bit-identical to a run that never stopped: same
//! final weights (SHA-256 of the safetensors file) and the same history. Then a finished
//! checkpoint is loaded in one line, a changed configuration trains afresh (and says why),
//! and `HW4_TRAIN=0` refuses a mismatched checkpoint, naming it.
//!
//! The training runs in child processes: this test binary run again with `HW4_RESUME_CHILD`
//! set executes `child_train` (a small MLP with noise injection, per-epoch shuffles, a
//! cosine learning rate, Adam and gradient clipping: every kind of state a notebook's
//! training cell carries).

use hw4::checkpoint::{self, Training};
use hw4::tch::nn::{self, Module};
use hw4::tch::{Device, Kind, Tensor};
use hw4::{data, optim, parts, Result, Session};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug)]
struct Config {
    hidden: i64,
    epochs: usize,
    lr: f64,
}

struct Run {
    vs: nn::VarStore,
    opt: optim::Adam,
    loss: Vec<f64>,
    rows: Vec<Tensor>,
    step: usize,
}

impl Run {
    fn parts(&mut self) -> checkpoint::Parts<'_> {
        parts![self; vs, opt, loss, rows, step]
    }
}

fn train(s: &Session, cfg: &Config) -> Result<Run> {
    s.seed(7);
    let x = Tensor::randn([256, 8], (Kind::Float, Device::Cpu));
    let y = x.sum_dim_intlist(1, true, Kind::Float).sin();
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "a", 8, cfg.hidden, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "b", cfg.hidden, 1, Default::default()));
    let opt = optim::Adam::new(&vs, nn::Adam::default(), cfg.lr);
    let mut run = Run {
        vs,
        opt,
        loss: vec![],
        rows: vec![],
        step: 0,
    };
    let mut ckpt = Training::new(s, "toy", cfg, cfg.epochs)
        .data(&x)?
        .data(&y)?;
    let done = ckpt.start(run.parts())?;
    let total = cfg.epochs * 8;
    for epoch in done + 1..=cfg.epochs {
        let mut sum = 0.0;
        for idx in data::batches(256, 32, 100 + epoch as u64) {
            let lr = cfg.lr
                * 0.5
                * (1.0 + (std::f64::consts::PI * run.step as f64 / total as f64).cos());
            run.opt.set_lr(lr);
            let xb = x.index_select(0, &idx);
            let noisy = &xb + xb.randn_like() * 0.1;
            let loss = (net.forward(&noisy) - y.index_select(0, &idx))
                .square()
                .mean(Kind::Float);
            run.opt.backward_step_clip_norm(&loss, 1.0);
            sum += loss.double_value(&[]);
            run.step += 1;
            if std::env::var_os("HW4_RESUME_SLOW").is_some() {
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
        }
        run.loss.push(sum / 8.0);
        run.rows
            .push(hw4::tch::no_grad(|| net.forward(&x.narrow(0, 0, 4))));
        ckpt.save_epoch(epoch, run.parts())?;
        println!("saved epoch {epoch}");
    }
    Ok(run)
}

#[test]
fn child_train() {
    if std::env::var_os("HW4_RESUME_CHILD").is_none() {
        return;
    }
    let s = Session::from_env("Resume").unwrap();
    let hidden = std::env::var("HW4_RESUME_HIDDEN").map_or(32, |v| v.parse().unwrap());
    let run = match train(
        &s,
        &Config {
            hidden,
            epochs: 12,
            lr: 1e-2,
        },
    ) {
        Ok(run) => run,
        Err(e) => {
            println!("error: {e}");
            return;
        }
    };
    checkpoint::save(&run.vs, s.out("final.safetensors")).unwrap();
    let rows = Tensor::cat(&run.rows, 0);
    let history = format!(
        "{:?} {:?} {}",
        run.loss,
        Vec::<f32>::try_from(rows.flatten(0, -1)).unwrap(),
        run.step
    );
    std::fs::write(s.out("history.txt"), history).unwrap();
    println!("finished");
}

fn child(out: &Path, mode: &str, extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_train",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("HW4_RESUME_CHILD", "1")
    .env("HW4_OUTPUT_DIR", out)
    .env("HW4_TRAIN", mode)
    .env("HW4_DEVICE", "cpu")
    .env("HW4_THREADS", "1")
    .env_remove("HW4_RESUME_SLOW")
    .env_remove("HW4_RESUME_HIDDEN");
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

fn run_to_end(out: &Path, mode: &str, extra: &[(&str, &str)]) -> String {
    let o = child(out, mode, extra).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

fn sha256(p: &Path) -> String {
    Sha256::digest(std::fs::read(p).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn result(out: &Path) -> (String, String) {
    let dir = out.join("Resume");
    (
        sha256(&dir.join("final.safetensors")),
        std::fs::read_to_string(dir.join("history.txt")).unwrap(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hw4-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn killed_training_resumes_bit_identically() {
    let (a, b) = (tmp("a"), tmp("b"));
    // Uninterrupted.
    let text = run_to_end(&a, "1", &[]);
    assert!(
        text.contains("saved epoch 12") && text.contains("finished"),
        "{text}"
    );
    let uninterrupted = result(&a);

    // Killed mid-epoch: after epoch 5's checkpoint, while epoch 6 is under way.
    let mut c = child(&b, "1", &[("HW4_RESUME_SLOW", "1")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("saved epoch 5") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(40));
    c.kill().unwrap(); // SIGKILL
    let status = c.wait().unwrap();
    assert!(!status.success());
    assert!(!b.join("Resume/final.safetensors").exists());

    // Re-run: resumes after the last saved epoch, ends identical.
    let text = run_to_end(&b, "auto", &[]);
    let resumed_at = text
        .lines()
        .find_map(|l| l.split("toy: resuming after epoch ").nth(1))
        .unwrap_or_else(|| panic!("no resume line in {text}"));
    assert!(
        resumed_at.starts_with("5/12 from ") || resumed_at.starts_with("6/12 from "),
        "{resumed_at}"
    );
    assert!(text.contains("Resume/toy.train.safetensors"), "{text}");
    let resumed = result(&b);
    eprintln!("uninterrupted weights sha256 {}", uninterrupted.0);
    eprintln!("resumed       weights sha256 {}", resumed.0);
    assert_eq!(
        resumed, uninterrupted,
        "resumed run differs from the uninterrupted one"
    );

    // Finished: loads in one line, trains nothing, same result.
    let text = run_to_end(&b, "auto", &[]);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("toy: ").nth(1))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with("loaded the finished training (12 epochs) from ")
            && lines[0].contains("toy.train.safetensors"),
        "{text}"
    );
    assert!(!text.contains("saved epoch"), "{text}");
    assert_eq!(result(&b), uninterrupted);
    let text = run_to_end(&b, "0", &[]);
    assert!(text.contains("toy: loaded the finished training"), "{text}");

    // Another configuration: HW4_TRAIN=0 refuses it, naming the file; auto trains afresh.
    let text = run_to_end(&b, "0", &[("HW4_RESUME_HIDDEN", "16")]);
    assert!(
        text.contains("error: HW4_TRAIN=0 but checkpoint ")
            && text.contains("toy.train.safetensors is of another run: the configuration changed"),
        "{text}"
    );
    let text = run_to_end(&b, "auto", &[("HW4_RESUME_HIDDEN", "16")]);
    assert!(
        text.contains("is of another run: the configuration changed; training from scratch")
            && text.contains("saved epoch 1\n"),
        "{text}"
    );
    // Fresh mode always trains from scratch.
    let text = run_to_end(&a, "1", &[]);
    assert!(
        text.contains("saved epoch 1\n") && !text.contains("toy: "),
        "{text}"
    );
    assert_eq!(result(&a), uninterrupted);
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}
