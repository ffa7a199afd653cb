//! Writes the corrupt-file corpus of tests/robustness.rs into a directory, one
//! NAME.tdb per case, for torture/corpus-run.c (`make corpus-compare` runs it
//! through Debian's libtdb and ours).
//!
//!   cargo run -p tdb-engine --example write_corpus -- DIR

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write_corpus DIR");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("write_corpus: cannot create {}: {}", dir.display(), e);
        return ExitCode::FAILURE;
    }
    let (cases, _, _) = common::corpus::corpus();
    for case in &cases {
        let path = dir.join(format!("{}.tdb", case.name));
        if let Err(e) = std::fs::write(&path, &case.bytes) {
            eprintln!("write_corpus: cannot write {}: {}", path.display(), e);
            return ExitCode::FAILURE;
        }
    }
    println!("{} corpus files written to {}", cases.len(), dir.display());
    ExitCode::SUCCESS
}
