//! LibTorch's generator states, which tch does not expose: saved with a training
//! checkpoint so that a resumed run draws the same random numbers as one that never
//! stopped (`torch.get_rng_state()` / `torch.cuda.get_rng_state(i)` in PyTorch).

use crate::error::{Error, Result};
use std::ffi::{c_char, c_void};
use tch::Tensor;

extern "C" {
    fn hw4_rng_get_state(device: i32, err: *mut c_char, len: i32) -> *mut c_void;
    fn hw4_rng_set_state(device: i32, state: *const c_void, err: *mut c_char, len: i32) -> i32;
}

fn message(err: &[u8]) -> String {
    String::from_utf8_lossy(err)
        .trim_end_matches('\0')
        .to_string()
}

/// The state of the default CPU generator (`device` `None`) or of CUDA device `i`'s
/// default generator, as a uint8 CPU tensor.
pub fn get_state(device: Option<usize>) -> Result<Tensor> {
    let mut err = [0u8; 512];
    let d = device.map_or(-1, |i| i as i32);
    // SAFETY: the shim returns a fresh `at::Tensor*` (owned by the Tensor) or null.
    let ptr = unsafe { hw4_rng_get_state(d, err.as_mut_ptr().cast(), err.len() as i32) };
    if ptr.is_null() {
        return Err(Error::msg(format!(
            "cannot read the generator state of {}: {}",
            name(device),
            message(&err)
        )));
    }
    // SAFETY: non-null handles from the shim are fresh `at::Tensor*`s.
    Ok(unsafe { Tensor::from_ptr(ptr.cast()) })
}

/// Sets a generator's state from [`get_state`]'s tensor.
pub fn set_state(device: Option<usize>, state: &Tensor) -> Result<()> {
    let mut err = [0u8; 512];
    let d = device.map_or(-1, |i| i as i32);
    let state = state.to_device(tch::Device::Cpu).contiguous();
    // SAFETY: `state` is a live tensor handle for the duration of the call.
    let rc = unsafe {
        hw4_rng_set_state(
            d,
            state.as_ptr().cast(),
            err.as_mut_ptr().cast(),
            err.len() as i32,
        )
    };
    if rc != 0 {
        return Err(Error::msg(format!(
            "cannot set the generator state of {}: {}",
            name(device),
            message(&err)
        )));
    }
    Ok(())
}

fn name(device: Option<usize>) -> String {
    device.map_or("the CPU".to_string(), |i| format!("cuda:{i}"))
}

/// Every default generator's state: the CPU's, then each CUDA device's.
pub fn get_all() -> Result<Vec<(String, Tensor)>> {
    let mut out = vec![("cpu".to_string(), get_state(None)?)];
    if tch::Cuda::is_available() {
        for i in 0..tch::Cuda::device_count() as usize {
            out.push((format!("cuda{i}"), get_state(Some(i))?));
        }
    }
    Ok(out)
}

/// Restores states written by [`get_all`]; a CUDA generator with no saved state (a
/// checkpoint written on a machine without CUDA) is an error.
pub fn set_all(states: &[(String, Tensor)]) -> Result<()> {
    let find = |k: &str| states.iter().find(|(n, _)| n == k).map(|(_, t)| t);
    set_state(None, find("cpu").ok_or("no saved CPU generator state")?)?;
    if tch::Cuda::is_available() {
        for i in 0..tch::Cuda::device_count() as usize {
            let t = find(&format!("cuda{i}"))
                .ok_or_else(|| Error::msg(format!("no saved generator state for cuda:{i}")))?;
            set_state(Some(i), t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn cpu_state_round_trips() {
        let _g = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        crate::seed(5);
        let _ = Tensor::randn([3], (Kind::Float, Device::Cpu));
        let state = get_state(None).unwrap();
        assert_eq!(state.kind(), Kind::Uint8);
        let a = Tensor::randn([1000], (Kind::Float, Device::Cpu));
        let _ = Tensor::rand([17], (Kind::Double, Device::Cpu));
        set_state(None, &state).unwrap();
        assert!(Tensor::randn([1000], (Kind::Float, Device::Cpu)).equal(&a));
        let e = set_state(None, &Tensor::from_slice(&[1u8, 2]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot set the generator state of the CPU: "),
            "{e}"
        );
    }
}
