//! Writes the CRD YAML into the CRD chart (`charts/wxgate-crds/templates/`), or prints it with
//! `--stdout` (for `| kubectl apply -f -`).

use std::path::PathBuf;
use std::process::ExitCode;

use wxgate_crds::crd;

fn main() -> ExitCode {
    let files = crd::files();
    if std::env::args().nth(1).as_deref() == Some("--stdout") {
        for (_, yaml) in &files {
            print!("---\n{yaml}");
        }
        return ExitCode::SUCCESS;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join(crd::CHART_TEMPLATES_DIR);
    for (name, yaml) in &files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
