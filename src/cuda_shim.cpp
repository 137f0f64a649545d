// LibTorch's global determinism switches, which tch does not expose.
// Compiled by build.rs against the same LibTorch headers that torch-sys uses.
#include <ATen/Context.h>

extern "C" void hw4_set_deterministic(int on) {
  // Same as torch.use_deterministic_algorithms(on) plus the cuDNN flags of
  // torch.backends.cudnn.{deterministic,benchmark}.
  at::globalContext().setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on != 0);
  at::globalContext().setBenchmarkCuDNN(on == 0 && at::globalContext().benchmarkCuDNN());
}

extern "C" int hw4_deterministic_algorithms() {
  return at::globalContext().deterministicAlgorithms() ? 1 : 0;
}
