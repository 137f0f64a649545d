//! The notebook session: device, run profile, seeds, threads, output folder, and the
//! one line that says all of it. Everything is read from the environment so that a
//! grader changes a run without editing cells:
//!
//! | variable        | values                          | default                         |
//! |-----------------|---------------------------------|---------------------------------|
//! | `HW4_DEVICE`    | `cpu`, `cuda`, `cuda:N`         | `cuda` when LibTorch sees one   |
//! | `HW4_PROFILE`   | `smoke`, `cpu`, `gpu`           | `gpu` on CUDA, else `cpu`       |
//! | `HW4_SEED`      | an unsigned integer             | `0`                             |
//! | `HW4_THREADS`   | a positive integer              | the machine's cores; 2 when portable |
//! | `HW4_OUTPUT_DIR`| a folder                        | `outputs/` in the project       |
//! | `HW4_CPU_MODE`  | `native`, `portable`            | `native` (see [`crate::cpu`])   |
//! | `HW4_TRAIN`     | `1`, `0`, `auto`                | `1` (see [`TrainMode`])         |

use crate::cpu::CpuMode;
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tch::Device;

/// How large a run is: `Smoke` for tests (seconds per cell), `Cpu` for about half
/// an hour on two cores, `Gpu` for the homework's full scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Smoke,
    Cpu,
    Gpu,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile> {
        match s.trim().to_ascii_lowercase().as_str() {
            "smoke" => Ok(Profile::Smoke),
            "cpu" => Ok(Profile::Cpu),
            "gpu" => Ok(Profile::Gpu),
            _ => Err(Error::msg(format!(
                "HW4_PROFILE={s:?} is not a run profile; expected one of smoke, cpu, gpu"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Cpu => "cpu",
            Profile::Gpu => "gpu",
        }
    }

    /// The value for this profile, e.g. `s.profile.pick(2, 20, 100)` epochs.
    pub fn pick<T>(self, smoke: T, cpu: T, gpu: T) -> T {
        match self {
            Profile::Smoke => smoke,
            Profile::Cpu => cpu,
            Profile::Gpu => gpu,
        }
    }
}

/// Parses `HW4_DEVICE`'s grammar: `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    let v = s.trim().to_ascii_lowercase();
    let device = match v.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        _ => match v.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => {
                return Err(Error::msg(format!(
                    "HW4_DEVICE={s:?} is not a device; expected cpu, cuda or cuda:N (N a GPU index)"
                )))
            }
        },
    };
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count() as usize;
        if count == 0 {
            return Err(Error::msg(format!(
                "HW4_DEVICE={s:?} asks for CUDA, but LibTorch sees no CUDA device on this machine; use HW4_DEVICE=cpu"
            )));
        }
        if n >= count {
            return Err(Error::msg(format!(
                "HW4_DEVICE={s:?} asks for GPU {n}, but this machine has {count} (cuda:0..cuda:{})",
                count - 1
            )));
        }
    }
    Ok(device)
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Seeds LibTorch's CPU and CUDA generators with `seed` and returns a portable
/// generator (ChaCha8, whose stream is fixed by its specification) for the crate's
/// own randomness: shuffles, splits, synthetic data.
pub fn seed(seed: u64) -> ChaCha8Rng {
    tch::manual_seed(seed as i64);
    if tch::Cuda::is_available() {
        tch::Cuda::manual_seed_all(seed);
    }
    ChaCha8Rng::seed_from_u64(seed)
}

/// Everything a notebook needs to know about where and how it runs.
#[derive(Debug, Clone)]
pub struct Session {
    pub notebook: String,
    pub device: Device,
    pub profile: Profile,
    pub seed: u64,
    pub threads: usize,
    /// How LibTorch's CPU kernels were chosen (`HW4_CPU_MODE`).
    pub cpu_mode: CpuMode,
    /// The instruction set of ATen's CPU kernels, e.g. `AVX512` or `AVX2`.
    pub cpu_isa: String,
    /// Whether models that offer it train and sample in bfloat16 mixed precision on
    /// the CPU (`HW4_BF16`, see [`crate::cpu::bf16_from_env`]); always off on CUDA.
    pub bf16: bool,
    pub out_dir: PathBuf,
}

impl Session {
    /// Reads the environment, configures LibTorch (threads, seeds, deterministic
    /// settings on CUDA) and creates `outputs/<notebook>/`: [`Session::start`]
    /// (defined in [`crate::metrics`]) without beginning metrics.json or printing.
    pub fn from_env(notebook: &str) -> Result<Session> {
        if notebook.is_empty() || notebook.contains(['/', '\\']) {
            return Err(Error::msg(format!(
                "notebook name {notebook:?} must be a plain name such as \"DDPM\""
            )));
        }
        // First, before anything runs on LibTorch: the CPU libraries read their
        // settings at their first use.
        let cpu_mode = crate::cpu::apply_from_env()?;
        let cpu_isa = crate::cpu::capability();
        let device = match env_var("HW4_DEVICE") {
            Some(v) => parse_device(&v)?,
            None => Device::cuda_if_available(),
        };
        let profile = match env_var("HW4_PROFILE") {
            Some(v) => Profile::parse(&v)?,
            None if device.is_cuda() => Profile::Gpu,
            None => Profile::Cpu,
        };
        let seed = match env_var("HW4_SEED") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::msg(format!("HW4_SEED={v:?} is not an unsigned integer")))?,
            None => 0,
        };
        let threads = match env_var("HW4_THREADS") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(Error::msg(format!(
                        "HW4_THREADS={v:?} is not a positive integer"
                    )))
                }
            },
            None if cpu_mode == CpuMode::Portable => crate::cpu::PORTABLE_THREADS,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        tch::set_num_threads(threads as i32);
        if device.is_cuda() {
            crate::cuda::deterministic_mode();
        }
        let bf16 = crate::cpu::bf16_from_env()? && !device.is_cuda();
        TrainMode::from_env()?;
        let out_dir = output_root().join(notebook);
        std::fs::create_dir_all(&out_dir).map_err(|e| {
            Error::msg(format!(
                "cannot create the output folder {}: {e}",
                out_dir.display()
            ))
        })?;
        let s = Session {
            notebook: notebook.to_string(),
            device,
            profile,
            seed,
            threads,
            cpu_mode,
            cpu_isa,
            bf16,
            out_dir,
        };
        s.seed(0);
        Ok(s)
    }

    /// The session line: the same on every run of the same configuration.
    pub fn line(&self) -> String {
        format!(
            "hw4 session: notebook={} device={} profile={} seed={} threads={} cpu={}({}) bf16={} tch=0.24.0 libtorch=2.11.0",
            self.notebook,
            device_name(self.device),
            self.profile.name(),
            self.seed,
            self.threads,
            self.cpu_mode.name(),
            self.cpu_isa,
            if self.bf16 { "on" } else { "off" }
        )
    }

    /// Seeds every generator for one cell: the session's base seed plus the cell's
    /// own number, so changing `HW4_SEED` changes every cell and re-running a cell
    /// gives the same result.
    pub fn seed(&self, cell: u64) -> ChaCha8Rng {
        seed(self.seed.wrapping_mul(1_000_003).wrapping_add(cell))
    }

    /// A file under this notebook's output folder.
    pub fn out(&self, name: &str) -> PathBuf {
        self.out_dir.join(name)
    }

    /// What training cells do (`HW4_TRAIN`, see [`TrainMode`]); an unknown value is an
    /// error naming it and the allowed ones.
    pub fn train_mode(&self) -> Result<TrainMode> {
        TrainMode::from_env()
    }

    /// Whether training is allowed at all: false only with `HW4_TRAIN=0` (load only).
    pub fn train_enabled(&self) -> bool {
        !matches!(TrainMode::from_env(), Ok(TrainMode::Load))
    }
}

/// What a training cell does with its checkpoint (`HW4_TRAIN`):
///
/// | value                  | mode    | the training cell                                          |
/// |------------------------|---------|------------------------------------------------------------|
/// | `1` (default), `fresh` | `Fresh` | trains from scratch (graders, `make notebooks`, tests)     |
/// | `0`, `load`            | `Load`  | loads its finished checkpoint; missing or mismatched: error |
/// | `auto`                 | `Auto`  | loads a finished matching checkpoint, resumes an unfinished one, else trains (`make lab`) |
///
/// Every mode but `Load` writes a checkpoint after each epoch (see `checkpoint::Training`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainMode {
    Fresh,
    Load,
    Auto,
}

impl TrainMode {
    pub fn parse(s: &str) -> Result<TrainMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "fresh" | "true" | "yes" => Ok(TrainMode::Fresh),
            "0" | "load" | "false" | "no" => Ok(TrainMode::Load),
            "auto" | "resume" => Ok(TrainMode::Auto),
            _ => Err(Error::msg(format!(
                "HW4_TRAIN={s:?} is not a training mode; expected 1 (train from scratch), 0 (load only) or auto (resume or load)"
            ))),
        }
    }

    /// `HW4_TRAIN`, `Fresh` when unset.
    pub fn from_env() -> Result<TrainMode> {
        env_var("HW4_TRAIN").map_or(Ok(TrainMode::Fresh), |v| TrainMode::parse(&v))
    }

    /// The value of `HW4_TRAIN` that selects this mode.
    pub fn name(self) -> &'static str {
        match self {
            TrainMode::Fresh => "1",
            TrainMode::Load => "0",
            TrainMode::Auto => "auto",
        }
    }
}

/// Makes a panic print one line, `panicked at <file>:<line>:<col>: <message>` (its
/// message's lines joined), instead of Rust's report with a backtrace (evcxr runs its
/// kernels with `RUST_BACKTRACE=1`). The panic itself still fails the cell and the run.
/// [`Session::start`] installs it; once per process.
pub fn short_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            let msg: Vec<&str> = msg
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "?".into());
            eprintln!("panicked at {at}: {}", msg.join(" | "));
        }));
    });
}

/// `HW4_OUTPUT_DIR`, else `outputs/` in the project that built this crate.
pub fn output_root() -> PathBuf {
    match env_var("HW4_OUTPUT_DIR") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("outputs"),
    }
}

/// The project's root folder (where `Cargo.toml` of `hw4` is), or `HW4_ROOT`.
pub fn project_root() -> PathBuf {
    match env_var("HW4_ROOT") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_reject() {
        assert_eq!(Profile::parse("Smoke").unwrap(), Profile::Smoke);
        assert_eq!(Profile::parse("gpu").unwrap(), Profile::Gpu);
        let e = Profile::parse("fast").unwrap_err().to_string();
        assert_eq!(
            e,
            "HW4_PROFILE=\"fast\" is not a run profile; expected one of smoke, cpu, gpu"
        );
        assert_eq!(Profile::Cpu.pick(1, 2, 3), 2);
    }

    #[test]
    fn train_modes_parse_and_reject() {
        assert_eq!(TrainMode::parse("1").unwrap(), TrainMode::Fresh);
        assert_eq!(TrainMode::parse("0").unwrap(), TrainMode::Load);
        assert_eq!(TrainMode::parse(" Auto").unwrap(), TrainMode::Auto);
        let e = TrainMode::parse("maybe").unwrap_err().to_string();
        assert_eq!(e, "HW4_TRAIN=\"maybe\" is not a training mode; expected 1 (train from scratch), 0 (load only) or auto (resume or load)");
    }

    #[test]
    fn devices_parse_and_reject() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        let e = parse_device("gpu").unwrap_err().to_string();
        assert!(e.starts_with("HW4_DEVICE=\"gpu\" is not a device"), "{e}");
        if !tch::Cuda::is_available() {
            let e = parse_device("cuda:1").unwrap_err().to_string();
            assert!(e.contains("sees no CUDA device"), "{e}");
        }
    }

    #[test]
    fn seeding_matches_pytorch() {
        // torch.manual_seed(42); torch.randn(2, 3)
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        seed(42);
        let t = tch::Tensor::randn([2, 3], (tch::Kind::Float, Device::Cpu));
        let v: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
        let expected = [0.3367f32, 0.1288, 0.2345, 0.2303, -1.1229, -0.1863];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-4, "{v:?}");
        }
    }
}
