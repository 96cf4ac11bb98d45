//! What WeChat's identifiers look like. Checked wherever one comes from outside (WeChat's
//! answer, a credential's claims, a client's login code) before it can reach a header.

/// An openid or unionid as WeChat issues them: 1 to 128 URL-safe characters. Anything else
/// (CR, LF, NUL, spaces, non-ASCII) is refused.
pub fn is_wechat_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| WECHAT_ID[usize::from(b)])
}

/// A login code as `wx.login()` issues them: 1 to 128 of `[A-Za-z0-9_-]`. Checked before any
/// call, so nothing odd reaches WeChat's query string.
pub fn is_valid_code(code: &str) -> bool {
    is_wechat_id(code)
}

/// A session_key: 1 to 64 characters of standard base64.
pub fn is_session_key(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| BASE64[usize::from(b)])
}

// Which bytes each kind of value may hold, one lookup per byte (a credential's ids are checked
// on every request).
const WECHAT_ID: [bool; 256] = alphanumeric_and(b"_-");
const BASE64: [bool; 256] = alphanumeric_and(b"+/=");

const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        allowed[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        allowed[extra[i] as usize] = true;
        i += 1;
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_what_a_header_cannot_carry() {
        assert!(is_wechat_id("oAbC-12_x") && is_session_key("tiihtNczf5v6AKRyjwEUhQ=="));
        for bad in ["", "a\r\nb", "a b", "a\0", "é", &"x".repeat(129)] {
            assert!(!is_wechat_id(bad), "{bad:?}");
        }
        for bad in ["", "a\nb", "a-b", &"A".repeat(65)] {
            assert!(!is_session_key(bad), "{bad:?}");
        }
    }
}
