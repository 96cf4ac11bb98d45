//! User-profile data WeChat vouches for (DESIGN.md section 7, reference/wechat-api.md 2.4):
//! `rawData` + `signature` (accepted when `signature == sha1(rawData + session_key)`), or
//! `encryptedData` + `iv` (AES-128-CBC with PKCS#7, key = base64-decoded session_key; the
//! decrypted watermark's appid must be the plugin's). Anything else is refused, never turned
//! into tags.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

/// Why profile data was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileError {
    /// `signature` is not sha1(rawData + session_key).
    BadSignature,
    /// Not base64, wrong key or IV length, bad padding, not a JSON object.
    Undecryptable,
    /// The watermark names another (or no) appid.
    WrongApp,
}

/// Checks `rawData` against its signature and returns its fields.
pub fn from_raw_data(
    raw: &str,
    signature: &str,
    session_key: &str,
) -> Result<Map<String, Value>, ProfileError> {
    let mut h = Sha1::new();
    h.update(raw.as_bytes());
    h.update(session_key.as_bytes());
    let expected = hex::encode(h.finalize());
    if !constant_time_eq(
        expected.as_bytes(),
        signature.trim().to_ascii_lowercase().as_bytes(),
    ) {
        return Err(ProfileError::BadSignature);
    }
    match serde_json::from_str(raw) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ProfileError::Undecryptable),
    }
}

/// Decrypts `encryptedData` and checks its watermark against the plugin's appid.
pub fn from_encrypted_data(
    encrypted: &str,
    iv: &str,
    session_key: &str,
    app_id: &str,
) -> Result<Map<String, Value>, ProfileError> {
    let decode = |s: &str| {
        STANDARD
            .decode(s.trim())
            .map_err(|_| ProfileError::Undecryptable)
    };
    let (data, iv, key) = (decode(encrypted)?, decode(iv)?, decode(session_key)?);
    let key: [u8; 16] = key.try_into().map_err(|_| ProfileError::Undecryptable)?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| ProfileError::Undecryptable)?;
    let plain = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| ProfileError::Undecryptable)?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&plain) else {
        return Err(ProfileError::Undecryptable);
    };
    match fields
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(Value::as_str)
    {
        Some(id) if id == app_id => Ok(fields),
        _ => Err(ProfileError::WrongApp),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // reference/wechat-api.md, "Test vectors": WeChat's documented examples.
    const RAW: &str = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
    const RAW_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";
    const RAW_SIGNATURE: &str = "75e81ceda165f4ffa64f4068af58c64b8f54b88c";
    const APP: &str = "wx4f4bc4dec97d474b";
    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

    #[test]
    fn wechat_signature_example_verifies_and_tampering_fails() {
        let fields = from_raw_data(RAW, RAW_SIGNATURE, RAW_KEY).unwrap();
        assert_eq!(fields["nickName"], "Band");
        assert_eq!(fields["gender"], 1);
        assert_eq!(
            from_raw_data(&RAW.replace("Band", "Bond"), RAW_SIGNATURE, RAW_KEY),
            Err(ProfileError::BadSignature)
        );
        assert_eq!(
            from_raw_data(RAW, RAW_SIGNATURE, "AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(ProfileError::BadSignature)
        );
        assert_eq!(
            from_raw_data(RAW, "", RAW_KEY),
            Err(ProfileError::BadSignature)
        );
    }

    #[test]
    fn wechat_encrypted_data_example_decrypts_with_its_watermark() {
        let fields = from_encrypted_data(DATA, IV, KEY, APP).unwrap();
        assert_eq!(fields["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(fields["nickName"], "Band");
        assert_eq!(fields["watermark"]["timestamp"], 1477314187);
    }

    #[test]
    fn another_app_wrong_key_or_tampered_data_is_refused() {
        assert_eq!(
            from_encrypted_data(DATA, IV, KEY, "wx0123456789abcdef"),
            Err(ProfileError::WrongApp)
        );
        assert!(from_encrypted_data(DATA, IV, "AAAAAAAAAAAAAAAAAAAAAA==", APP).is_err());
        let mut tampered = STANDARD.decode(DATA).unwrap();
        let n = tampered.len();
        tampered[n - 1] ^= 0x01;
        assert_eq!(
            from_encrypted_data(&STANDARD.encode(&tampered), IV, KEY, APP),
            Err(ProfileError::Undecryptable)
        );
        for bad in ["", "not base64!", "AAAA"] {
            assert!(from_encrypted_data(bad, IV, KEY, APP).is_err(), "{bad:?}");
            assert!(from_encrypted_data(DATA, bad, KEY, APP).is_err(), "{bad:?}");
        }
    }
}
