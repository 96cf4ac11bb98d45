//! Taking the login code out of a JSON (mode even) or form (mode odd) body: when a code comes
//! out, the body left holds no code field any more (taking it again finds none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::mode;
use wxgate_sidecar::proxy::codes::{BodyKind, take_fields};

fuzz_target!(|data: &[u8]| {
    let Some((m, body)) = mode(data) else { return };
    let kind = if m % 2 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Form
    };
    if let Ok((found, rest)) = take_fields(kind, body, &["code"])
        && found[0].is_some()
    {
        let again = take_fields(kind, &rest, &["code"]);
        assert!(matches!(again, Ok((f, _)) if f[0].is_none()));
    }
});
