//! Notebooks compile as programs: the extractor's rules, and a compile error in a
//! throwaway notebook failing the build with the notebook and cell named.

use hw4::nbextract::{example_name, extract};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hw4-nbextract-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn notebook(dir: &Path, name: &str, cells: &[(&str, &str)]) -> PathBuf {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(kind, src)| {
            serde_json::json!({"cell_type": kind, "metadata": {}, "source": src,
                               "outputs": [], "execution_count": null})
        })
        .collect();
    let nb =
        serde_json::json!({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4});
    let p = dir.join(format!("{name}.ipynb"));
    std::fs::write(&p, serde_json::to_string_pretty(&nb).unwrap()).unwrap();
    p
}

#[test]
fn commands_dropped_headings_kept_cells_marked() {
    let d = scratch("rules");
    let p = notebook(
        &d,
        "GAN-VAE",
        &[
            ("markdown", "# Title\nsome text\n## Section"),
            ("code", ":dep hw4 = { path = \"..\" }"),
            ("code", "let x = 1;\nprintln!(\"{x}\");"),
        ],
    );
    assert_eq!(example_name(&p), "gan_vae");
    let code = extract(&p).unwrap();
    assert!(!code.contains(":dep"), "{code}");
    assert!(
        code.contains("    // # Title\n    // ## Section\n"),
        "{code}"
    );
    assert!(!code.contains("some text"), "{code}");
    assert!(
        code.contains("let x = 1; // [GAN-VAE.ipynb cell 2]"),
        "{code}"
    );
    assert!(code.contains("fn main()"), "{code}");
}

#[test]
fn trailing_expression_is_rejected_with_the_cell_named() {
    let d = scratch("trailing");
    let p = notebook(&d, "T", &[("code", "let x = 2;\nx + 1")]);
    let e = extract(&p).unwrap_err();
    assert!(
        e.starts_with("T.ipynb cell 0 ends with an expression (`x + 1`)"),
        "{e}"
    );
}

#[test]
fn string_literals_spanning_lines_are_left_intact() {
    let d = scratch("strings");
    let p = notebook(
        &d,
        "S",
        &[("code", "let t = \"a\nb\";\nassert_eq!(t, \"a\\nb\");")],
    );
    let code = extract(&p).unwrap();
    // Lines that start or end inside a string are copied verbatim.
    assert!(code.contains("\nlet t = \"a\nb\";\n"), "{code}");
    assert!(
        code.contains("assert_eq!(t, \"a\\nb\"); // [S.ipynb cell 0]"),
        "{code}"
    );
}

#[test]
fn compile_error_in_a_notebook_fails_the_build_naming_the_cell() {
    let d = scratch("crate");
    let p = notebook(
        &d,
        "Throwaway",
        &[
            ("markdown", "# A broken notebook"),
            ("code", "let fine: i32 = 1;"),
            ("code", "let broken: i32 = \"text\";"),
        ],
    );
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(
        d.join("Cargo.toml"),
        "[package]\nname = \"throwaway\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(d.join("src/main.rs"), extract(&p).unwrap()).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--offline"])
        .current_dir(&d)
        .env("CARGO_TARGET_DIR", d.join("target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("mismatched types"), "{stderr}");
    assert!(
        stderr.contains("let broken: i32 = \"text\"; // [Throwaway.ipynb cell 2]"),
        "{stderr}"
    );
}
