//! `HW4_BF16` and the CPU autocast region (`hw4::cpu::Bf16Autocast`) that the DDPM
//! notebook's U-Net runs under when the session's `bf16` is on.

use hw4::cpu::{self, Bf16Autocast};
use hw4::tch::{Device, Kind, Tensor};
use hw4::Session;

/// The environment is the process's: one test sets and reads `HW4_BF16`.
#[test]
fn hw4_bf16_is_read_and_checked() {
    let out = std::env::temp_dir().join(format!("hw4-bf16-{}", std::process::id()));
    std::env::set_var("HW4_OUTPUT_DIR", &out);
    std::env::set_var("HW4_DEVICE", "cpu");
    std::env::set_var("HW4_PROFILE", "smoke");
    std::env::remove_var("HW4_CPU_MODE");

    std::env::set_var("HW4_BF16", "yes");
    assert_eq!(
        cpu::bf16_from_env().unwrap_err().to_string(),
        "HW4_BF16=\"yes\" is not a switch; expected 1 (bfloat16 mixed precision on the CPU) or 0 (float32 throughout)"
    );
    let e = Session::from_env("Bf16").unwrap_err().to_string();
    assert!(e.starts_with("HW4_BF16=\"yes\" is not a switch"), "{e}");

    std::env::set_var("HW4_BF16", "1");
    assert!(cpu::bf16_from_env().unwrap());
    let s = Session::from_env("Bf16").unwrap();
    assert!(s.bf16);
    assert!(s.line().contains(" bf16=on "), "{}", s.line());

    std::env::set_var("HW4_BF16", "0");
    assert!(!cpu::bf16_from_env().unwrap());
    let s = Session::from_env("Bf16").unwrap();
    assert!(!s.bf16);
    assert!(s.line().contains(" bf16=off "), "{}", s.line());

    // Unset or empty: off.
    std::env::remove_var("HW4_BF16");
    assert!(!cpu::bf16_from_env().unwrap());
    std::env::set_var("HW4_BF16", " ");
    assert!(!Session::from_env("Bf16").unwrap().bf16);
    std::env::remove_var("HW4_BF16");
    let _ = std::fs::remove_dir_all(out);
}

fn conv(x: &Tensor, w: &Tensor) -> Tensor {
    x.conv2d(w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
}

#[test]
fn autocast_region_runs_convolutions_in_bf16_and_ends_when_dropped() {
    hw4::tch::manual_seed(0);
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let mut w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let exact = conv(&x, &w);
    assert_eq!(exact.kind(), Kind::Float);

    let y = {
        let _outer = Bf16Autocast::enter();
        let inner = {
            let _inner = Bf16Autocast::enter();
            conv(&x, &w)
        };
        // Leaving a nested region keeps the outer one on.
        assert_eq!(inner.kind(), Kind::BFloat16);
        let y = conv(&x, &w);
        assert_eq!(y.kind(), Kind::BFloat16);
        // Element-wise ops are not cast: a float32 tensor stays float32.
        assert_eq!((&x * 2.0).kind(), Kind::Float);
        y
    };
    assert_eq!(
        conv(&x, &w).kind(),
        Kind::Float,
        "the region ended with the guard"
    );

    // bfloat16 keeps 8 bits of mantissa: close to the float32 result, not equal to it.
    let err = (y.to_kind(Kind::Float) - &exact)
        .abs()
        .max()
        .double_value(&[]);
    let scale = exact.abs().max().double_value(&[]);
    assert!(err > 0.0 && err < 0.02 * scale, "err {err}, scale {scale}");

    // Gradients flow to the float32 weight through the cast.
    let g = {
        let _r = Bf16Autocast::enter();
        conv(&x, &w).to_kind(Kind::Float).sum(Kind::Float)
    };
    g.backward();
    assert_eq!(w.grad().kind(), Kind::Float);
    assert!(w.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);

    // The cast weights are cached only within a region: after an update of the weight,
    // the next region sees the new values (as after an optimiser step).
    let before = {
        let _r = Bf16Autocast::enter();
        conv(&x, &w)
    };
    hw4::tch::no_grad(|| {
        let _ = w.f_mul_(&Tensor::from(-1.0f32)).unwrap();
    });
    let after = {
        let _r = Bf16Autocast::enter();
        conv(&x, &w)
    };
    let sum = (before.to_kind(Kind::Float) + after.to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    assert_eq!(sum, 0.0, "a negated weight gives the negated output");
}
