//! WeChat's answers (mode 0: code2Session, 1: stable_token, 2: getuserphonenumber): whatever
//! WeChat (or anyone on the path) sends, a session comes out only with ids that look like
//! WeChat's, a token only of at most 512 visible ASCII characters, a phone number only of digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::mode;
use wxgate_sidecar::ids::{is_session_key, is_wechat_id};
use wxgate_sidecar::wechat::{parse_answer, phone, token};

fuzz_target!(|data: &[u8]| {
    let Some((m, body)) = mode(data) else { return };
    match m % 3 {
        0 => {
            if let Ok(session) = parse_answer(body) {
                assert!(is_wechat_id(&session.openid));
                assert!(session.unionid.as_deref().is_none_or(is_wechat_id));
                assert!(is_session_key(session.session_key.expose()));
            }
        }
        1 => {
            if let Ok((t, lifetime)) = token::parse_answer(body) {
                let t = t.expose();
                assert!(!t.is_empty() && t.len() <= 512 && t.bytes().all(|b| b.is_ascii_graphic()));
                assert!(lifetime.as_secs() >= 1);
            }
        }
        _ => {
            if let Ok((p, _)) = phone::parse_answer(body) {
                assert!(p.is_well_formed());
                assert!(http::HeaderValue::from_str(&p.number).is_ok());
            }
        }
    }
});
