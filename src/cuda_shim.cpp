// LibTorch's global determinism switches and its CPU capability, which tch does
// not expose. Compiled by build.rs against the same LibTorch headers that torch-sys uses.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Version.h>

#include <cstring>
#include <string>

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

// The instruction set ATen's CPU kernels dispatch to ("AVX512", "AVX2", "DEFAULT",
// ...), as torch.backends.cpu.get_cpu_capability(). Copies at most `len` bytes of it
// into `buf` and returns how many.
extern "C" int hw4_cpu_capability(char* buf, int len) {
  const std::string s = at::get_cpu_capability();
  const int n = static_cast<int>(s.size()) < len ? static_cast<int>(s.size()) : len;
  std::memcpy(buf, s.data(), n);
  return n;
}

// at::leaky_relu with its slope (tch's `leaky_relu` fixes it at 0.01). Takes and
// returns tch's tensor handles (`at::Tensor*`, see torch-sys' torch_api.h); the result
// is a new handle owned by the caller. On an error, returns null and copies at most
// `len` bytes of the message into `err`.
extern "C" at::Tensor* hw4_leaky_relu(const at::Tensor* x, double slope, char* err, int len) {
  try {
    return new at::Tensor(at::leaky_relu(*x, slope));
  } catch (const std::exception& e) {
    const std::string s = e.what();
    const int n = static_cast<int>(s.size()) < len ? static_cast<int>(s.size()) : len;
    std::memcpy(err, s.data(), n);
    return nullptr;
  }
}
