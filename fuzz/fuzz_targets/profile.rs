//! Profile data: rawData with its right signature (mode 0), any text encrypted with the session
//! key (mode 1), or any rawData/signature or encryptedData/iv strings (modes 2 and 3). Fields
//! come out only when the signature matches, and decrypted data only with this AppID's
//! watermark.
#![no_main]

use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use wxgate_fuzz::{APP_ID, mode};
use wxgate_sidecar::profile::{from_encrypted_data, from_raw_data};

const KEY: [u8; 16] = *b"0123456789abcdef";
const IV: [u8; 16] = *b"fedcba9876543210";

fuzz_target!(|data: &[u8]| {
    let Some((m, rest)) = mode(data) else { return };
    let session_key = STANDARD.encode(KEY);
    let text = String::from_utf8_lossy(rest);
    match m % 4 {
        0 => {
            let signature =
                hex::encode(Sha1::new_with_prefix(format!("{text}{session_key}")).finalize());
            if from_raw_data(&text, &signature, &session_key).is_err() {
                assert!(!matches!(
                    serde_json::from_str(&text),
                    Ok(serde_json::Value::Object(_))
                ));
            }
            assert!(from_raw_data(&text, &"0".repeat(40), &session_key).is_err());
        }
        1 => {
            let sealed = cbc::Encryptor::<aes::Aes128>::new(&KEY.into(), &IV.into())
                .encrypt_padded_vec::<Pkcs7>(rest);
            let fields = from_encrypted_data(
                &STANDARD.encode(sealed),
                &STANDARD.encode(IV),
                &session_key,
                APP_ID,
            );
            if let Ok(fields) = fields {
                assert_eq!(fields["watermark"]["appid"], APP_ID);
            }
        }
        n => {
            let mut parts = text.splitn(3, '\u{0}');
            let (a, b, key) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(&session_key),
            );
            if n == 2 {
                let _ = from_raw_data(a, b, key);
            } else if let Ok(fields) = from_encrypted_data(a, b, key, APP_ID) {
                assert_eq!(fields["watermark"]["appid"], APP_ID);
            }
        }
    }
});
