//! Data loading and synthetic generation speed:
//! `cargo run --release --example data_bench` (prints one line per measurement).

use hw4::data::{self, synth};
use hw4::image::imageops::FilterType;
use std::time::Instant;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(f());
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> hw4::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("data_bench: {threads} threads, best of 3");
    // The notebooks' own search (HW4_DATA_DIR, data/, ../shared/data).
    let captchas = data::find("captcha_images_v2")?;
    let mnist = data::find("mnist")?;
    if let (Some(dir), Some(mnist)) = (captchas.dir(), mnist.dir()) {
        for filter in [FilterType::Lanczos3, FilterType::Triangle] {
            let t = best_of(3, || data::load_captchas_from(dir, 64, 256, filter));
            println!(
                "captcha load: 1040 real images -> 64x256 ({filter:?}): {t:.3} s ({:.0} images/s)",
                1040.0 / t
            );
        }
        let t = best_of(3, || {
            data::load_captchas_from(dir, 50, 200, FilterType::Triangle)
        });
        println!("captcha load: 1040 real images at 50x200 (no resize): {t:.3} s");
        let t = best_of(3, || data::load_mnist_from(mnist));
        println!("mnist load: 60000 training images (gzip IDX): {t:.3} s");
    } else {
        println!("no real captchas or MNIST found: real loads not measured");
    }
    let t = best_of(3, || synth::captchas(1040, 0));
    println!(
        "synthetic captchas: 1040 in {t:.3} s ({:.0} images/s)",
        1040.0 / t
    );
    let t = best_of(3, || synth::digits(10_000, 0));
    println!(
        "synthetic digits: 10000 in {t:.3} s ({:.0} images/s)",
        10_000.0 / t
    );
    Ok(())
}
