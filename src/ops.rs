//! Tensor operations that LibTorch has and tch does not expose.

use std::ffi::{c_char, c_void};
use tch::Tensor;

extern "C" {
    fn hw4_leaky_relu(x: *const c_void, slope: f64, err: *mut c_char, len: i32) -> *mut c_void;
}

/// `x.leaky_relu_with(0.2)`: LibTorch's `leaky_relu(x, negative_slope)`, as PyTorch's
/// `F.leaky_relu(x, 0.2)` (tch's `leaky_relu` fixes the slope at 0.01). One kernel each
/// way, where `x.maximum(&(x * slope))` costs four in the backward pass.
pub trait LeakyRelu {
    fn leaky_relu_with(&self, slope: f64) -> Tensor;
}

impl LeakyRelu for Tensor {
    fn leaky_relu_with(&self, slope: f64) -> Tensor {
        let mut err = [0u8; 512];
        // SAFETY: `self.as_ptr()` is a live tensor handle; the shim returns a new handle
        // (owned by the returned Tensor) or null after copying the error message.
        let ptr = unsafe {
            hw4_leaky_relu(
                self.as_ptr().cast(),
                slope,
                err.as_mut_ptr().cast(),
                err.len() as i32,
            )
        };
        if ptr.is_null() {
            let msg = String::from_utf8_lossy(&err);
            panic!(
                "leaky_relu(slope {slope}) failed: {}",
                msg.trim_end_matches('\0')
            );
        }
        // SAFETY: non-null handles from the shim are fresh `at::Tensor*`s.
        unsafe { Tensor::from_ptr(ptr.cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn leaky_relu_matches_its_definition_values_and_gradients() {
        let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.5, 3.0]).set_requires_grad(true);
        let y = x.leaky_relu_with(0.2);
        let want = [-0.4f32, -0.1, 0.0, 0.5, 3.0];
        assert_eq!(Vec::<f32>::try_from(&y).unwrap(), want);
        y.sum(Kind::Float).backward();
        assert_eq!(
            Vec::<f32>::try_from(&x.grad()).unwrap(),
            [0.2f32, 0.2, 0.2, 1.0, 1.0]
        );
        let r = Tensor::randn([64, 32, 14, 14], (Kind::Float, Device::Cpu));
        assert!(r.leaky_relu_with(0.2).equal(&r.maximum(&(&r * 0.2))));
    }

    #[test]
    #[should_panic(expected = "leaky_relu(slope 0.2) failed")]
    fn an_integer_tensor_is_a_clear_error() {
        let _ = Tensor::from_slice(&[1i64, -2]).leaky_relu_with(0.2);
    }
}
