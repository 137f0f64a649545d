//! Turns every `notebooks/<Stem>.ipynb` into a Rust program `OUT_DIR/nb_<Stem>.rs`,
//! compiled as the cargo example whose file includes it (`examples/gan_vae.rs`
//! includes `nb_GAN-VAE.rs`: the example files are the one place that pairs examples
//! with notebooks; scripts/nbruns.py reads them): code cells in order inside one
//! function returning a `Result`, evcxr commands (`:dep`, `:opt`, ...) dropped,
//! markdown headings kept as comments. Each cell starts with a header comment naming
//! its notebook and cell, so a compile error's line falls under its cell. A cell whose
//! last line is an expression (shown by evcxr as the cell's value) is rejected:
//! notebooks show results by explicit calls so that they also compile as programs.
//! Each notebook's items alone (structs, impls, functions, `use`s; no statements) also go
//! to `OUT_DIR/nb_<Stem>_items.rs`, which the benchmarks include, so that they run the
//! notebook's own models.

#[path = "build/nbextract.rs"]
mod nbextract;

use nbextract::{extract, extract_items};
use std::path::Path;

fn main() {
    build_cuda_shim();
    // The Jupyter kernel (scripts/kernel sets HW4_KERNEL) builds only the library, which
    // needs none of this; watching the notebooks there would rerun this script, and so
    // recompile hw4 (C++ shim included), at the next cell after every save of a notebook.
    println!("cargo:rerun-if-env-changed=HW4_KERNEL");
    if std::env::var_os("HW4_KERNEL").is_some_and(|v| !v.is_empty()) {
        return;
    }
    println!("cargo:rerun-if-changed=notebooks");
    println!("cargo:rerun-if-changed=build/nbextract.rs");
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
        let stem = path.file_stem().expect("a notebook file").to_string_lossy();
        let code = match extract(&path) {
            Ok(code) => code,
            Err(e) => {
                // Surface the problem where the example is compiled, with the cell named.
                format!("compile_error!({:?});\nfn main() {{}}\n", e)
            }
        };
        std::fs::write(Path::new(&out).join(format!("nb_{stem}.rs")), code).expect("write");
        // The notebook's items alone, for the benchmarks to `include!` (examples/bench_*.rs).
        let items = extract_items(&path).unwrap_or_else(|e| format!("compile_error!({:?});\n", e));
        std::fs::write(Path::new(&out).join(format!("nb_{stem}_items.rs")), items).expect("write");
    }
}

/// Compiles `src/cuda_shim.cpp` (LibTorch's determinism switches) against the
/// LibTorch that torch-sys uses (`LIBTORCH`, see scripts/env.sh).
fn build_cuda_shim() {
    println!("cargo:rerun-if-changed=src/cuda_shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        panic!("LIBTORCH is not set: build through the Makefile or `source scripts/env.sh` first");
    };
    let inc = Path::new(&libtorch).join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("src/cuda_shim.cpp")
        .include(&inc)
        .include(inc.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("hw4_cuda_shim");
    // The linker drops a library none of whose symbols is used (`--as-needed`), and nothing
    // calls into libtorch_cuda directly: without this the programs built here (examples,
    // tests, scripts/gpu-bundle) see no GPU on a CUDA machine (tch-rs issue #980; tch-rs's
    // own build.rs does the same). A CPU-only LibTorch has no libtorch_cuda.
    let lib = Path::new(&libtorch).join("lib");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
