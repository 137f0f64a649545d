//! `HW4_CPU_MODE=portable` in a process of its own (LibTorch's CPU code is chosen
//! once per process): a pinned variable set to something else is refused with one
//! line; the session pins the libraries, runs ATen's AVX2 kernels, uses two threads
//! whatever the cores, and says so in its line; a native session after it is refused.

use hw4::cpu::{self, CpuMode};
use hw4::Session;

#[test]
fn portable_session_pins_the_cpu_libraries() {
    if !cpu::supports_portable() {
        let e = Session::from_env("CpuMode").unwrap_err().to_string();
        assert!(e.contains("needs an x86-64 CPU with AVX2 and FMA"), "{e}");
        return;
    }
    let out = std::env::temp_dir().join(format!("hw4-cpu-mode-{}", std::process::id()));
    std::env::set_var("HW4_OUTPUT_DIR", &out);
    std::env::set_var("HW4_DEVICE", "cpu");
    std::env::set_var("HW4_PROFILE", "smoke");
    std::env::set_var("HW4_CPU_MODE", "portable");
    std::env::remove_var("HW4_THREADS");
    for (var, _) in cpu::PORTABLE_PINS {
        std::env::remove_var(var);
    }

    std::env::set_var("ONEDNN_MAX_CPU_ISA", "AVX512_CORE");
    let e = Session::from_env("CpuMode").unwrap_err().to_string();
    assert_eq!(
        e,
        "ONEDNN_MAX_CPU_ISA=\"AVX512_CORE\" conflicts with HW4_CPU_MODE=portable, which sets it to \"AVX2\"; unset it or use HW4_CPU_MODE=native"
    );
    std::env::remove_var("ONEDNN_MAX_CPU_ISA");

    let s = Session::from_env("CpuMode").unwrap();
    assert_eq!(s.cpu_mode, CpuMode::Portable);
    assert_eq!(s.cpu_isa, "AVX2");
    assert_eq!(s.threads, cpu::PORTABLE_THREADS);
    assert_eq!(hw4::tch::get_num_threads(), cpu::PORTABLE_THREADS as i32);
    assert!(
        s.line().contains(" threads=2 cpu=portable(AVX2) "),
        "{}",
        s.line()
    );
    for (var, value) in cpu::PORTABLE_PINS {
        assert_eq!(std::env::var(var).as_deref(), Ok(value), "{var}");
    }
    assert_eq!(cpu::kernel_tag(), "portable AVX2");

    std::env::set_var("HW4_CPU_MODE", "native");
    let e = Session::from_env("CpuMode").unwrap_err().to_string();
    assert!(
        e.starts_with("HW4_CPU_MODE=native after a portable session"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(out);
}
