//! `HW4_DATA_DIR` end to end (its own test binary: it sets the environment).

use hw4::data::{self, Source};
use hw4::image::imageops::FilterType;

#[test]
fn hw4_data_dir_selects_the_source() {
    let base = std::env::temp_dir().join(format!("hw4-data-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();

    // 17. HW4_DATA_DIR naming a folder that does not exist: an error, not synthetic data.
    let missing = base.join("missing");
    std::env::set_var("HW4_DATA_DIR", &missing);
    let e = data::load_mnist().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "HW4_DATA_DIR={} is not an existing folder; point it at a folder that holds mnist/ (an empty folder selects the synthetic sets) or unset it",
            missing.display()
        )
    );

    // An existing folder without the datasets: the synthetic sets.
    std::env::set_var("HW4_DATA_DIR", &base);
    assert_eq!(data::find("mnist").unwrap(), Source::Synthetic);
    let m = data::load_mnist().unwrap();
    assert_eq!((m.split.as_str(), m.len()), ("synthetic", 10_000));
    assert_eq!(
        m.describe(),
        "mnist: 10000 synthetic digits 28x28 from the embedded synthetic generator (seed 0; HW4_DATA_DIR has no mnist/)"
    );
    let c = data::load_captchas(50, 200, FilterType::Triangle).unwrap();
    assert!(c.source.is_synthetic());
    assert_eq!(c.len(), 1040);

    // A folder holding a dataset: that one.
    let shared = hw4::session::project_root().join("../shared/data");
    if shared.join("mnist").is_dir() {
        std::env::set_var("HW4_DATA_DIR", &shared);
        let m = data::load_mnist().unwrap();
        assert_eq!(m.source, Source::EnvDir(shared.join("mnist")));
        assert_eq!((m.split.as_str(), m.len()), ("train", 60_000));
        let t = data::load_mnist_test().unwrap().unwrap();
        assert_eq!(t.source, Source::EnvDir(shared.join("mnist")));
        assert_eq!((t.split.as_str(), t.len()), ("test", 10_000));
    }
    std::env::remove_var("HW4_DATA_DIR");
}
