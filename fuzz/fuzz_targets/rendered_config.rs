//! The rendered ConfigMap entry the sidecar reads in a cluster: any JSON, compiled with the
//! quickstart's Secret. A config that parses serializes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_crds::render::RenderedConfig;
use wxgate_fuzz::RENDERED;
use wxgate_sidecar::active::Active;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<RenderedConfig>(data) else {
        return;
    };
    let again: RenderedConfig =
        serde_json::from_value(serde_json::to_value(&config).expect("a config serializes"))
            .expect("a serialized config parses");
    assert_eq!(again, config);
    let _ = Active::compile(&config, &RENDERED.secret);
});
