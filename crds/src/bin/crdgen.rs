//! Writes the CRD YAML into the CRD chart (`charts/wxgate-crds/templates/`), or prints it with
//! `--stdout` (for `| kubectl apply -f -`).

use std::path::PathBuf;
use std::process::ExitCode;

use wxgate_crds::crd;

const USAGE: &str = "usage: crdgen [--stdout]

Generates the CustomResourceDefinitions from the Rust types.
  (no argument)  write them into charts/wxgate-crds/templates/
  --stdout       print them instead (for `| kubectl apply -f -`)
  -h, --help     print this help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => false,
        ["--stdout"] => true,
        ["-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("crdgen: unexpected arguments {args:?}; nothing written\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let files = crd::files();
    if stdout {
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
