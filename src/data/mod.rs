//! Datasets for the notebooks: MNIST (IDX files, gzipped or raw), folders of captcha
//! images whose file stem is the label, seeded splits and mini-batches, and embedded
//! synthetic generators used when no real data is found.
//!
//! Where data comes from, in this order (see `data/README.md`):
//! 1. `$HW4_DATA_DIR/<dataset>` when `HW4_DATA_DIR` is set (and only there);
//! 2. `<project>/data/<dataset>`;
//! 3. `<project>/../shared/data/<dataset>`;
//! 4. the synthetic generator in [`synth`].
//!
//! Loaders print one line on stdout (what, which split, from where) that is the
//! same on every run; timings go to stderr.

mod batch;
mod captcha;
pub mod font;
mod format;
mod mnist;
mod source;
pub mod synth;

pub use batch::{batches, permutation, split};
pub use captcha::{
    captcha_split, load_captchas, load_captchas_from, load_captchas_opts, load_captchas_source,
    load_captchas_with, Captchas, CAPTCHA_SPLIT_SEED, SYNTH_CAPTCHAS,
};
pub use format::{
    default_transform, Alphabet, CaptchaOpts, Transform, CAPTCHA_ALPHABET, CAPTCHA_LEN,
};
pub use mnist::{
    load_mnist, load_mnist_from, load_mnist_source, load_mnist_test, load_mnist_test_source, Mnist,
    SYNTH_DIGITS,
};
pub use source::{find, find_in, Source, DATASETS};

use std::path::{Path, PathBuf};

/// Seed of the synthetic sets the loaders fall back to.
pub const SYNTH_SEED: u64 = 0;

/// A path as printed: relative to the project root when inside it (or beside it, as
/// `../shared/data`), so that printed lines do not depend on where the checkout is.
pub fn show_path(p: &Path) -> String {
    let root = crate::session::project_root();
    if let Ok(r) = p.strip_prefix(&root) {
        return if r.as_os_str().is_empty() {
            ".".into()
        } else {
            r.display().to_string()
        };
    }
    if let Some(parent) = root.parent() {
        if let Ok(r) = p.strip_prefix(parent) {
            return PathBuf::from("..").join(r).display().to_string();
        }
    }
    p.display().to_string()
}

/// Worker threads for decoding: the machine's cores, at most 8.
fn workers(jobs: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(jobs.max(1))
}
