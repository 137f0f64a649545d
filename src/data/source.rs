//! Where a dataset is read from.

use super::show_path;
use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// The datasets the loaders know, by folder name.
pub const DATASETS: [&str; 2] = ["mnist", "captcha_images_v2"];

/// Where a dataset comes from. The paths are the dataset's own folder, e.g.
/// `../shared/data/mnist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `$HW4_DATA_DIR/<dataset>`.
    EnvDir(PathBuf),
    /// `<project>/data/<dataset>`.
    ProjectData(PathBuf),
    /// `<project>/../shared/data/<dataset>`.
    Shared(PathBuf),
    /// A folder given by the caller (`load_*_from`).
    Dir(PathBuf),
    /// The embedded generator in [`super::synth`].
    Synthetic,
}

impl Source {
    /// The dataset's folder, `None` for the synthetic generator.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Source::EnvDir(p) | Source::ProjectData(p) | Source::Shared(p) | Source::Dir(p) => {
                Some(p)
            }
            Source::Synthetic => None,
        }
    }

    pub fn is_synthetic(&self) -> bool {
        matches!(self, Source::Synthetic)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::EnvDir(p) => write!(f, "{} (HW4_DATA_DIR)", show_path(p)),
            Source::ProjectData(p) => write!(f, "{} (project data)", show_path(p)),
            Source::Shared(p) => write!(f, "{} (shared data)", show_path(p)),
            Source::Dir(p) => write!(f, "{}", show_path(p)),
            Source::Synthetic => f.write_str("the embedded synthetic generator"),
        }
    }
}

/// Finds `dataset` (`"mnist"` or `"captcha_images_v2"`): `$HW4_DATA_DIR/<dataset>`
/// when `HW4_DATA_DIR` is set, else `<project>/data/<dataset>`, else
/// `<project>/../shared/data/<dataset>`, else [`Source::Synthetic`].
///
/// `HW4_DATA_DIR` replaces the search: when it is set, only that folder is looked at,
/// so pointing it at an empty folder selects the synthetic sets. A value that is not
/// an existing folder is an error (a typo must not silently give synthetic data).
pub fn find(dataset: &str) -> Result<Source> {
    let env = std::env::var_os("HW4_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    find_in(dataset, env.as_deref(), &crate::session::project_root())
}

/// [`find`] with the environment variable's value and the project root given.
pub fn find_in(dataset: &str, data_dir: Option<&Path>, root: &Path) -> Result<Source> {
    if !DATASETS.contains(&dataset) {
        return Err(Error::msg(format!(
            "unknown dataset {dataset:?}; expected one of {}",
            DATASETS.join(", ")
        )));
    }
    if let Some(d) = data_dir {
        if !d.is_dir() {
            return Err(Error::msg(format!(
                "HW4_DATA_DIR={} is not an existing folder; point it at a folder that holds {dataset}/ (an empty folder selects the synthetic sets) or unset it",
                d.display()
            )));
        }
        let p = d.join(dataset);
        return Ok(if p.is_dir() {
            Source::EnvDir(p)
        } else {
            Source::Synthetic
        });
    }
    let p = root.join("data").join(dataset);
    if p.is_dir() {
        return Ok(Source::ProjectData(p));
    }
    let p = root.join("..").join("shared").join("data").join(dataset);
    if p.is_dir() {
        return Ok(Source::Shared(p));
    }
    Ok(Source::Synthetic)
}

/// Why the synthetic set is used, for the loader's line.
pub(crate) fn why_synthetic(dataset: &str) -> String {
    if std::env::var_os("HW4_DATA_DIR").is_some_and(|v| !v.is_empty()) {
        format!("HW4_DATA_DIR has no {dataset}/")
    } else {
        format!("no {dataset}/ in data/ or ../shared/data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hw4-source-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn search_order() {
        let root = tmp("order").join("proj");
        std::fs::create_dir_all(root.join("data")).unwrap();
        let shared = root.join("..").join("shared").join("data").join("mnist");
        std::fs::create_dir_all(&shared).unwrap();
        assert_eq!(
            find_in("mnist", None, &root).unwrap(),
            Source::Shared(shared.clone())
        );
        std::fs::create_dir_all(root.join("data/mnist")).unwrap();
        assert_eq!(
            find_in("mnist", None, &root).unwrap(),
            Source::ProjectData(root.join("data/mnist"))
        );
        let env = tmp("order-env");
        assert_eq!(
            find_in("mnist", Some(&env), &root).unwrap(),
            Source::Synthetic
        );
        std::fs::create_dir_all(env.join("mnist")).unwrap();
        assert_eq!(
            find_in("mnist", Some(&env), &root).unwrap(),
            Source::EnvDir(env.join("mnist"))
        );
        assert_eq!(
            find_in("captcha_images_v2", None, &root).unwrap(),
            Source::Synthetic
        );
    }

    #[test]
    fn bad_names_and_missing_env_dir() {
        let root = tmp("bad");
        let e = find_in("cifar", None, &root).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown dataset \"cifar\"; expected one of mnist, captcha_images_v2"
        );
        let missing = root.join("nope");
        let e = find_in("mnist", Some(&missing), &root)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "HW4_DATA_DIR={} is not an existing folder",
                missing.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn display_is_relative_to_the_project() {
        let root = crate::session::project_root();
        let s = Source::Shared(root.join("..").join("shared/data/mnist"));
        assert_eq!(s.to_string(), "../shared/data/mnist (shared data)");
        let s = Source::ProjectData(root.join("data/mnist"));
        assert_eq!(s.to_string(), "data/mnist (project data)");
        assert_eq!(
            Source::Synthetic.to_string(),
            "the embedded synthetic generator"
        );
    }
}
