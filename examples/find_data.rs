//! Prints where the notebooks would read each dataset from, one `<dataset>\t<folder>`
//! line per dataset found (none for a dataset they would replace by its synthetic
//! set): `hw4::data::find`'s answer, for scripts (scripts/gpu-bundle) that must not
//! repeat its search order.

fn main() -> hw4::Result<()> {
    for ds in hw4::data::DATASETS {
        if let Some(dir) = hw4::data::find(ds)?.dir() {
            println!("{ds}\t{}", dir.display());
        }
    }
    Ok(())
}
