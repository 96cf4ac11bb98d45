//! Opening a credential: any string (mode 0), or any claims text sealed with the documented
//! layout and the right key (mode 1), so the claims parser and its checks are reached too. A
//! credential that opens names this plugin's AppID and an identity that can be forwarded whole,
//! and seals again to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::{APP_ID, NOW, SEALER, mint, mode};
use wxgate_sidecar::ids::{is_session_key, is_wechat_id};

fuzz_target!(|data: &[u8]| {
    let Some((m, rest)) = mode(data) else { return };
    let credential = match m % 2 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        _ => mint(rest),
    };
    let Ok(claims) = SEALER.open(&credential, NOW, None) else {
        return;
    };
    assert_eq!(claims.appid, APP_ID);
    assert!(is_wechat_id(&claims.openid));
    assert!(claims.unionid.as_deref().is_none_or(is_wechat_id));
    assert!(
        claims
            .sk
            .as_ref()
            .is_none_or(|k| is_session_key(k.expose()))
    );
    assert_eq!(SEALER.open(&SEALER.seal(&claims), NOW, None), Ok(claims));
});
