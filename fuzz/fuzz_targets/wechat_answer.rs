//! code2Session's answer: whatever WeChat (or anyone on the path) sends, a session comes out
//! only with ids that look like WeChat's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_sidecar::ids::{is_session_key, is_wechat_id};
use wxgate_sidecar::wechat::parse_answer;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = parse_answer(data) {
        assert!(is_wechat_id(&session.openid));
        assert!(session.unionid.as_deref().is_none_or(is_wechat_id));
        assert!(is_session_key(session.session_key.expose()));
    }
});
