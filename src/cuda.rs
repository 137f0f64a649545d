//! CUDA settings for reproducible runs.

/// Puts LibTorch in its reproducible configuration for CUDA: cuDNN autotuning off
/// (it picks kernels by timing, so the choice varies run to run) and a fixed cuBLAS
/// workspace (required by cuBLAS for deterministic results; must be set before the
/// first cuBLAS call).
pub fn deterministic_mode() {
    if std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    tch::Cuda::cudnn_set_benchmark(false);
}
