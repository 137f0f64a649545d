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

// ---- Optimiser and generator state (src/optim.rs, src/rng.rs) ----

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <mutex>

static void hw4_copy_err(const std::exception& e, char* err, int len) {
  const std::string s = e.what();
  const int n = static_cast<int>(s.size()) < len ? static_cast<int>(s.size()) : len;
  std::memcpy(err, s.data(), n);
}

// One Adam/AdamW step on one parameter, op for op as torch::optim::Adam::step and
// torch::optim::AdamW::step of LibTorch 2.11 (torch/csrc/api/src/optim/adam{,w}.cpp),
// which tch's nn::Adam / nn::AdamW run: same ATen calls in the same order, hence the
// same bits. `step` is the parameter's step count after this step (state.step() + 1).
// `max_exp_avg_sq` may be null (no AMSGrad). Returns 0, or 1 after copying the error.
extern "C" int hw4_adam_step(at::Tensor* p, at::Tensor* exp_avg, at::Tensor* exp_avg_sq,
                             at::Tensor* max_exp_avg_sq, int64_t step, double lr, double beta1,
                             double beta2, double eps, double weight_decay, int decoupled,
                             char* err, int len) {
  try {
    c10::NoGradGuard no_grad;
    auto grad = p->grad();
    if (!grad.defined()) return 0;
    if (decoupled) {
      // AdamW: "Perform stepweight decay".
      if (weight_decay != 0) p->mul_(1 - lr * weight_decay);
    }
    auto bias_correction1 = 1 - std::pow(beta1, step);
    auto bias_correction2 = 1 - std::pow(beta2, step);
    if (!decoupled && weight_decay != 0) grad = grad.add(*p, weight_decay);
    // Decay the first and second moment running average coefficient.
    exp_avg->mul_(beta1).add_(grad, 1 - beta1);
    exp_avg_sq->mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    at::Tensor denom;
    if (max_exp_avg_sq != nullptr) {
      at::max_out(*max_exp_avg_sq, *exp_avg_sq, *max_exp_avg_sq);
      denom = (max_exp_avg_sq->sqrt() / std::sqrt(bias_correction2)).add_(eps);
    } else {
      denom = (exp_avg_sq->sqrt() / std::sqrt(bias_correction2)).add_(eps);
    }
    auto step_size = lr / bias_correction1;
    p->addcdiv_(*exp_avg, denom, -step_size);
    return 0;
  } catch (const std::exception& e) {
    hw4_copy_err(e, err, len);
    return 1;
  }
}

// torch::optim::Optimizer::zero_grad(set_to_none = true) for one parameter.
extern "C" void hw4_grad_to_none(at::Tensor* p) {
  if (p->mutable_grad().defined()) {
    p->mutable_grad().detach_();
    p->mutable_grad().reset();
  }
}

// The default generator of `device` (-1: the CPU, else that CUDA device).
static at::Generator hw4_generator(int device) {
  if (device < 0) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
}

// The state of a default generator as a new uint8 CPU tensor (torch.get_rng_state(),
// torch.cuda.get_rng_state(i)); null after copying the error.
extern "C" at::Tensor* hw4_rng_get_state(int device, char* err, int len) {
  try {
    auto gen = hw4_generator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    return new at::Tensor(gen.get_state());
  } catch (const std::exception& e) {
    hw4_copy_err(e, err, len);
    return nullptr;
  }
}

// Sets a default generator's state from a tensor written by hw4_rng_get_state.
extern "C" int hw4_rng_set_state(int device, const at::Tensor* state, char* err, int len) {
  try {
    auto gen = hw4_generator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*state);
    return 0;
  } catch (const std::exception& e) {
    hw4_copy_err(e, err, len);
    return 1;
  }
}

// LibTorch's CPU autocast (torch.autocast("cpu", dtype=torch.bfloat16)), which tch
// does not expose: its switch is thread-local, so enter and exit run on one thread,
// around one forward pass. `enter` returns the previous state for `exit`; `exit`
// clears the cast-weight cache when the outermost region ends, as PyTorch's
// autocast.__exit__ does, so that no stale bfloat16 copy of a weight outlives an
// optimiser step.
#include <ATen/autocast_mode.h>

extern "C" int hw4_autocast_cpu_enter() {
  const bool prev = at::autocast::is_autocast_enabled(at::kCPU);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::increment_nesting();
  return prev ? 1 : 0;
}

extern "C" void hw4_autocast_cpu_exit(int prev) {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(at::kCPU, prev != 0);
}
