//! wxgate-operator: not built yet (see the operator issue). It exits with an error so nothing
//! mistakes it for a working operator.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("wxgate-operator is not built yet: it arrives with the operator issue");
    ExitCode::from(2)
}
