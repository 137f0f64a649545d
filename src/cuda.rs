//! CUDA settings for reproducible runs.

extern "C" {
    fn hw4_set_deterministic(on: i32);
    fn hw4_deterministic_algorithms() -> i32;
}

/// Switches LibTorch's deterministic algorithms on or off (PyTorch's
/// `torch.use_deterministic_algorithms`, plus cuDNN's deterministic flag). With it
/// on, an operation that has no deterministic CUDA kernel raises an error instead
/// of silently varying.
pub fn set_deterministic_algorithms(on: bool) {
    // SAFETY: plain calls into LibTorch's global context (src/cuda_shim.cpp).
    unsafe { hw4_set_deterministic(on as i32) }
}

/// Whether LibTorch's deterministic algorithms are on.
pub fn deterministic_algorithms() -> bool {
    // SAFETY: see above.
    unsafe { hw4_deterministic_algorithms() != 0 }
}

/// Puts LibTorch in its reproducible configuration for CUDA: cuDNN autotuning off
/// (it picks kernels by timing, so the choice varies run to run), a fixed cuBLAS
/// workspace (required by cuBLAS for deterministic results; must be set before the
/// first cuBLAS call) and deterministic algorithms on.
pub fn deterministic_mode() {
    if std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    tch::Cuda::cudnn_set_benchmark(false);
    set_deterministic_algorithms(true);
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_switch_reaches_libtorch() {
        super::set_deterministic_algorithms(true);
        assert!(super::deterministic_algorithms());
        super::set_deterministic_algorithms(false);
        assert!(!super::deterministic_algorithms());
    }
}
