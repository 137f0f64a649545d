//! Turns every `notebooks/*.ipynb` into a Rust program under OUT_DIR, compiled as a
//! cargo example (`examples/<name>.rs` includes it): code cells in order inside one
//! function returning a `Result`, evcxr commands (`:dep`, `:opt`, ...) dropped,
//! markdown headings kept as comments. Each code line carries a trailing comment
//! naming its notebook and cell, so a compile error points at the cell. A cell whose
//! last line is an expression (shown by evcxr as the cell's value) is rejected:
//! notebooks show results by explicit calls so that they also compile as programs.

#[path = "src/nbextract.rs"]
mod nbextract;

use nbextract::{example_name, extract};
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=notebooks");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let dir = Path::new("notebooks");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    paths.sort();
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = example_name(&path);
        let code = match extract(&path) {
            Ok(code) => code,
            Err(e) => {
                // Surface the problem where the example is compiled, with the cell named.
                format!("compile_error!({:?});\nfn main() {{}}\n", e)
            }
        };
        std::fs::write(Path::new(&out).join(format!("nb_{name}.rs")), code).expect("write");
    }
}
