//! Taking the login code out of a JSON (mode even) or form (mode odd) body: when a code comes
//! out, the body left holds no code field any more (taking it again fails).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::mode;
use wxgate_sidecar::proxy::login::{BodyKind, take_code};

fuzz_target!(|data: &[u8]| {
    let Some((m, body)) = mode(data) else { return };
    let kind = if m % 2 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Form
    };
    if let Ok((_code, rest)) = take_code(kind, body, "code") {
        assert!(take_code(kind, &rest, "code").is_err());
    }
});
