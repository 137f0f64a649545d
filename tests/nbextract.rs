//! Notebooks compile as programs: the extractor's rules, and a compile error in a
//! throwaway notebook failing the build at a line under its cell's header.

#[path = "../build/nbextract.rs"]
mod nbextract;

use nbextract::extract;
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
    let code = extract(&p).unwrap();
    assert!(!code.contains(":dep"), "{code}");
    assert!(
        code.contains("    // # Title\n    // ## Section\n"),
        "{code}"
    );
    assert!(!code.contains("some text"), "{code}");
    assert!(
        code.contains("    // ---- GAN-VAE.ipynb cell 2 ----\nlet x = 1;\nprintln!"),
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
fn cells_are_copied_verbatim_string_literals_included() {
    let d = scratch("strings");
    // A raw string that goes on to the next line, a quote inside it, and a line
    // starting with ':' inside a literal (not an evcxr command: code came before).
    let cell = "let t = \"a\nb\";\nlet r = r#\"x \" // y\n:z\"#;\nassert_eq!(t, \"a\\nb\");";
    let p = notebook(&d, "S", &[("code", cell)]);
    let code = extract(&p).unwrap();
    assert!(
        code.contains(&format!("    // ---- S.ipynb cell 0 ----\n{cell}\n")),
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
    // rustc names the line (`--> src/main.rs:LINE:COL`); the header above it, the cell.
    let line: usize = stderr
        .split("--> src/main.rs:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {stderr}"));
    let source = std::fs::read_to_string(d.join("src/main.rs")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    assert_eq!(lines[line - 1], "let broken: i32 = \"text\";");
    let header = lines[..line].iter().rev().find(|l| l.contains("// ---- "));
    assert_eq!(header, Some(&"    // ---- Throwaway.ipynb cell 2 ----"));
}

#[test]
fn items_keep_definitions_and_drop_statements() {
    let d = scratch("items");
    let p = notebook(
        &d,
        "Items",
        &[
            ("code", ":dep hw4 = { path = \"..\" }"),
            ("code", "use std::collections::{HashMap, HashSet};\nlet s = 1;"),
            (
                "code",
                "/// A point.\n#[derive(Debug, Clone, Copy)]\nstruct P { x: i64 }\n\nimpl P {\n    fn brace(&self) -> char { '{' }\n    fn text(&self) -> String { format!(\"}} {}\", r#\"}\"#) }\n}\n\nlet p = P { x: 1 };\nprintln!(\"{p:?}\");\nfor i in 0..2 { println!(\"{i}\"); }",
            ),
            ("code", "const N: usize = 3;\nfn f<'a>(s: &'a str) -> &'a str { s }\nlet y = if N > 2 { 1 } else { 2 };"),
        ],
    );
    let items = nbextract::extract_items(&p).unwrap();
    for kept in [
        "use std::collections::{HashMap, HashSet};",
        "/// A point.\n#[derive(Debug, Clone, Copy)]\nstruct P { x: i64 }",
        "fn brace(&self) -> char { '{' }",
        "r#\"}\"#) }\n}",
        "const N: usize = 3;",
        "fn f<'a>(s: &'a str) -> &'a str { s }",
    ] {
        assert!(items.contains(kept), "missing {kept:?} in\n{items}");
    }
    for dropped in [":dep", "let s", "let p", "println!", "for i", "let y"] {
        assert!(!items.contains(dropped), "{dropped:?} kept in\n{items}");
    }
}
