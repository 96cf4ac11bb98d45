//! Standalone mode's manifests: any YAML text, parsed, rendered and compiled as
//! `wxgate-sidecar --manifests` does. Errors are plain text; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_crds::manifests;
use wxgate_sidecar::source::manifests::{EphemeralKeys, compile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(objects) = manifests::parse(text) else {
        return;
    };
    let _ = compile(objects, None, &mut EphemeralKeys::default());
});
