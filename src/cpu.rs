//! How LibTorch picks its CPU code, and the switch that makes a run's numbers the
//! same on other x86-64 machines: `HW4_CPU_MODE`.
//!
//! LibTorch's CPU kernels come from three libraries that each choose their code by
//! the instruction set of the CPU they run on, and split some reductions by thread
//! count, so the same seed gives numbers that differ in the last bits from one CPU
//! to another; over a training run those bits grow into different results
//! (measured in the issue notes: `scripts/cpu_variants.py`).
//!
//! - `native` (the default): every library picks the fastest code for this CPU, and
//!   the thread count is the number of cores. Bit-reproducible on the same CPU kind
//!   with the same thread count.
//! - `portable`: the three libraries are pinned to code that any x86-64 CPU with
//!   AVX2 and FMA runs the same way, and the thread count defaults to
//!   [`PORTABLE_THREADS`] whatever the number of cores (an explicit `HW4_THREADS`
//!   still wins, and the session line shows it). Slower on CPUs with AVX-512; see
//!   environment.md for what it costs and what it does not cover.
//!
//! The libraries read these settings once, at their first use, so
//! [`apply`] runs in `Session::start` before any tensor operation; it checks that
//! ATen took its setting, and refuses when a variable it pins is already set to
//! something else.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

/// `HW4_CPU_MODE`: how LibTorch's CPU kernels are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// Each library picks the fastest code for this CPU.
    Native,
    /// Code pinned to AVX2 everywhere, fixed thread count: the same numbers on any
    /// x86-64 CPU with AVX2 and FMA.
    Portable,
}

impl CpuMode {
    pub fn parse(s: &str) -> Result<CpuMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" => Ok(CpuMode::Native),
            "portable" => Ok(CpuMode::Portable),
            _ => Err(Error::msg(format!(
                "HW4_CPU_MODE={s:?} is not a CPU mode; expected native or portable"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CpuMode::Native => "native",
            CpuMode::Portable => "portable",
        }
    }
}

/// The mode used when `HW4_CPU_MODE` is not set.
pub const DEFAULT_MODE: CpuMode = CpuMode::Native;

/// Intra-op threads in portable mode unless `HW4_THREADS` says otherwise: the
/// same on every machine, because ATen's parallel reductions, oneDNN's weight
/// gradients and MKL in its reproducible mode each give thread-count-dependent
/// sums. Two: the cores of the machine kind the cpu profile was sized for.
pub const PORTABLE_THREADS: usize = 2;

/// What portable mode sets, before the libraries' first use.
pub const PORTABLE_PINS: [(&str, &str); 3] = [
    // ATen's own vectorised kernels (element-wise ops, reductions, softmax, norms):
    // the AVX2 build instead of AVX-512. Read once, at the first kernel dispatch
    // (aten/src/ATen/native/DispatchStub.cpp, compute_cpu_capability); it does not
    // check the CPU, hence the AVX2/FMA check in `apply`.
    ("ATEN_CPU_CAPABILITY", "avx2"),
    // oneDNN (convolutions): JIT code for at most AVX2 (oneDNN developer guide,
    // "CPU Dispatcher Control"; read when the first kernel is generated).
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
    // oneMKL (matrix products): conditional numerical reproducibility on the
    // COMPATIBLE branch. oneMKL's guide ("Specifying Code Branches"): branches other
    // than AUTO and COMPATIBLE are for Intel processors only, elsewhere AUTO is used
    // silently; CNR also asks for a fixed number of threads ("Reproducibility
    // Conditions"). Measured on this AMD machine: MKL_CBWR=AVX2 gives AUTO's numbers.
    ("MKL_CBWR", "COMPATIBLE"),
];

static PORTABLE: AtomicBool = AtomicBool::new(false);

extern "C" {
    fn hw4_cpu_capability(buf: *mut u8, len: i32) -> i32;
}

/// The instruction set ATen's CPU kernels dispatch to: `AVX512`, `AVX2`, `DEFAULT`,
/// … (PyTorch's `torch.backends.cpu.get_cpu_capability()`). Fixed by the first
/// call in a process.
pub fn capability() -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the shim writes at most `len` bytes into `buf` (src/cuda_shim.cpp).
    let n = unsafe { hw4_cpu_capability(buf.as_mut_ptr(), buf.len() as i32) };
    String::from_utf8_lossy(&buf[..n.clamp(0, buf.len() as i32) as usize]).into_owned()
}

/// Whether this CPU runs portable mode's code: x86-64 with AVX2 and FMA.
pub fn supports_portable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Reads `HW4_CPU_MODE` (unset: [`DEFAULT_MODE`]) and configures the libraries for
/// it; returns the mode that runs. Must come before the first tensor operation.
pub fn apply_from_env() -> Result<CpuMode> {
    let mode = match std::env::var("HW4_CPU_MODE") {
        Ok(v) if !v.trim().is_empty() => CpuMode::parse(&v)?,
        _ => DEFAULT_MODE,
    };
    apply(mode)
}

/// Configures the libraries for `mode` (see the module documentation).
pub fn apply(mode: CpuMode) -> Result<CpuMode> {
    if mode == CpuMode::Native {
        if PORTABLE.load(Ordering::Relaxed) {
            return Err(Error::msg(
                "HW4_CPU_MODE=native after a portable session in the same process: LibTorch's \
                 CPU code is chosen once per process; restart the kernel",
            ));
        }
        return Ok(mode);
    }
    if !supports_portable() {
        return Err(Error::msg(format!(
            "HW4_CPU_MODE=portable needs an x86-64 CPU with AVX2 and FMA, which this {} machine \
             lacks; use HW4_CPU_MODE=native",
            std::env::consts::ARCH
        )));
    }
    for (var, value) in PORTABLE_PINS {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() && v != value => {
                return Err(Error::msg(format!(
                    "{var}={v:?} conflicts with HW4_CPU_MODE=portable, which sets it to {value:?}; \
                     unset it or use HW4_CPU_MODE=native"
                )))
            }
            _ => {}
        }
    }
    for (var, value) in PORTABLE_PINS {
        // The libraries read these at their first use, which comes after this.
        std::env::set_var(var, value);
    }
    let isa = capability();
    if isa != "AVX2" {
        return Err(Error::msg(format!(
            "HW4_CPU_MODE=portable came too late: LibTorch already runs its {isa} kernels in this \
             process (they are chosen at the first tensor operation); restart the kernel and start \
             the session first"
        )));
    }
    PORTABLE.store(true, Ordering::Relaxed);
    Ok(mode)
}

/// The CPU configuration results depend on, for cache keys of trained weights:
/// the mode and ATen's instruction set, e.g. `portable AVX2`.
pub fn kernel_tag() -> String {
    let mode = if PORTABLE.load(Ordering::Relaxed) {
        CpuMode::Portable
    } else {
        CpuMode::Native
    };
    format!("{} {}", mode.name(), capability())
}

extern "C" {
    fn hw4_autocast_cpu_enter() -> i32;
    fn hw4_autocast_cpu_exit(prev: i32);
}

/// `HW4_BF16`: whether models that offer mixed precision use it on the CPU: `1` on,
/// `0` or unset off. Off by default: on this project's AVX-512 BF16 machine it made the
/// DDPM notebook about 9% faster, short of its time target, and its effect on the samples
/// is not settled (README, development notes).
pub fn bf16_from_env() -> Result<bool> {
    match std::env::var("HW4_BF16") {
        Ok(v) if !v.trim().is_empty() => match v.trim() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(Error::msg(format!(
                "HW4_BF16={v:?} is not a switch; expected 1 (bfloat16 mixed precision on the \
                 CPU) or 0 (float32 throughout)"
            ))),
        },
        _ => Ok(false),
    }
}

/// A region of CPU autocast to bfloat16 (PyTorch's `torch.autocast("cpu",
/// torch.bfloat16)`): inside it, convolutions and matrix products run in bfloat16
/// with float32 weights kept as they are (mixed precision, Micikevicius et al. 2018).
/// Ends when dropped; create and drop it on the same thread.
pub struct Bf16Autocast {
    prev: i32,
}

impl Bf16Autocast {
    pub fn enter() -> Bf16Autocast {
        // SAFETY: the shim only flips LibTorch's thread-local autocast state.
        Bf16Autocast {
            prev: unsafe { hw4_autocast_cpu_enter() },
        }
    }
}

impl Drop for Bf16Autocast {
    fn drop(&mut self) {
        // SAFETY: as in `enter`; restores the state `enter` found.
        unsafe { hw4_autocast_cpu_exit(self.prev) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_reject() {
        assert_eq!(CpuMode::parse(" Portable ").unwrap(), CpuMode::Portable);
        assert_eq!(CpuMode::parse("native").unwrap(), CpuMode::Native);
        let e = CpuMode::parse("fast").unwrap_err().to_string();
        assert_eq!(
            e,
            "HW4_CPU_MODE=\"fast\" is not a CPU mode; expected native or portable"
        );
    }

    #[test]
    fn capability_is_an_isa_name() {
        let c = capability();
        assert!(
            ["AVX512", "AVX2", "DEFAULT", "NO AVX"].contains(&c.as_str()),
            "{c:?}"
        );
    }
}
