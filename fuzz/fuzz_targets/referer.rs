//! A mini program's `Referer` (any string, either platform): what comes out is exactly what went
//! in, read back: `https://{the platform's host}/{appid}/{version}/page-frame.html` with one of
//! the platform's AppIDs and a version of digits or `devtools`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_crds::render::contract::Platform;
use wxgate_fuzz::mode;
use wxgate_sidecar::referer::MiniReferer;

fuzz_target!(|data: &[u8]| {
    let Some((m, bytes)) = mode(data) else { return };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let platform = if m % 2 == 0 {
        Platform::WeChat
    } else {
        Platform::QQ
    };
    if let Some(r) = MiniReferer::parse(text, platform) {
        let host = platform.referer_host();
        assert_eq!(
            text,
            format!("https://{host}/{}/{}/page-frame.html", r.app_id, r.version)
        );
        assert!(platform.is_app_id(r.app_id));
        assert!(r.version == "devtools" || r.version.bytes().all(|b| b.is_ascii_digit()));
        assert!(["release", "trial-or-develop", "devtools"].contains(&r.channel()));
    }
});
