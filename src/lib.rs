//! `hw4`: the thin helper crate behind the hw4 notebooks. The homework's answers
//! (models, losses, training loops) live in the notebooks; this crate carries what
//! every notebook needs: the session (device, profile, seeds), data loaders,
//! figures, checkpoints, metrics, file output and the evaluators that judge the results.
//!
//! Notebooks depend on this crate only: `tch`, `plotters`, `image` and `ndarray`
//! are re-exported so that cells never pull a second copy with another version.

pub mod checkpoint;
pub mod checks;
pub mod cpu;
pub mod cuda;
pub mod data;
mod error;
pub mod eval;
pub mod init;
pub mod io;
pub mod metrics;
pub mod ops;
pub mod optim;
pub mod progress;
pub mod rng;
pub mod session;
pub mod show;

pub use error::{Context, Error, Result};
pub use session::{seed, Profile, Session, TrainMode};
pub use {image, ndarray, plotters, rand, rand_chacha, serde_json, tch};

/// `use hw4::prelude::*;` in a notebook's second cell.
pub mod prelude {
    pub use crate::ops::LeakyRelu;
    pub use crate::show::{ChartOpts, ImageOpts, Series};
    pub use crate::{checkpoint, data, eval, init, metrics, optim, parts, progress, show};
    pub use crate::{seed, Context, Error, Profile, Result, Session, TrainMode};
    pub use rand::{Rng, RngCore, SeedableRng};
    pub use rand_chacha::ChaCha8Rng;
    pub use tch::nn::{self, Module, ModuleT, OptimizerConfig};
    pub use tch::{Device, IndexOp, Kind, Reduction, Tensor};
}

/// Unit tests that seed LibTorch's global generator hold this lock (tests run in
/// parallel threads of one process).
#[cfg(test)]
pub(crate) static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
