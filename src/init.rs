//! PyTorch's default initialisation for tch layers. `torch.nn.Linear` and `Conv2d` draw
//! weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (`kaiming_uniform_` with
//! a = sqrt(5)); tch's defaults draw the weights sqrt(6) times wider (the ReLU gain) and
//! start conv biases at 0. The DDPM U-Net trained with tch's defaults sat at loss 1.0 for
//! its first epochs, as did a PyTorch port given the same initialisation.
use tch::nn;

fn uniform(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn::LinearConfig` with PyTorch's initialisation for `d_in` inputs.
pub fn torch_linear(d_in: i64) -> nn::LinearConfig {
    let init = uniform(d_in);
    nn::LinearConfig {
        ws_init: init,
        bs_init: Some(init),
        bias: true,
    }
}

/// `nn::ConvConfig` with PyTorch's initialisation for `c_in` input channels and a `k x k`
/// kernel (no padding, stride 1: set them by struct update).
pub fn torch_conv(c_in: i64, k: i64) -> nn::ConvConfig {
    let init = uniform(c_in * k * k);
    nn::ConvConfig {
        ws_init: init,
        bs_init: init,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().to_kind(Kind::Double).double_value(&[])
    }

    #[test]
    fn weights_and_biases_reach_but_never_pass_one_over_sqrt_fan_in() {
        let _guard = crate::TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "lin", 64, 512, torch_linear(64));
        let conv = nn::conv2d(vs.root() / "conv", 32, 64, 3, torch_conv(32, 3));
        for (name, t, fan_in) in [
            ("linear weight", &lin.ws, 64),
            ("linear bias", lin.bs.as_ref().expect("bias"), 64),
            ("conv weight", &conv.ws, 32 * 9),
            ("conv bias", conv.bs.as_ref().expect("bias"), 32 * 9),
        ] {
            let (m, bound) = (max_abs(t), 1.0 / (fan_in as f64).sqrt());
            assert!(
                m <= bound && m > 0.9 * bound,
                "{name}: max |value| {m}, bound {bound}"
            );
        }
        let wide = nn::linear(vs.root() / "tch_default", 64, 512, Default::default());
        assert!(
            max_abs(&wide.ws) > 2.0 / 8.0,
            "tch's default is wider than PyTorch's"
        );
    }

    #[test]
    fn conv_config_keeps_geometry_defaults() {
        let c = torch_conv(3, 5);
        assert_eq!(
            (c.stride, c.padding, c.dilation, c.groups, c.bias),
            (1, 0, 1, 1, true)
        );
    }
}
