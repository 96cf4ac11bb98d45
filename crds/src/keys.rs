//! Credential key rings (DESIGN.md section 5).
//!
//! Secret `<plugin-name>-credential-keys` in the plugin's namespace: each data entry `<kid>`
//! (8 lowercase hex characters, the 4 kid bytes) holds a raw 32-byte AES-256 key, and the entry
//! `active` holds the kid that signs. Every other kid present verifies.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Data entry of the key ring Secret naming the signing kid.
pub const ACTIVE_ENTRY: &str = "active";
/// Length of a credential key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Name of the key ring Secret of a plugin.
pub fn key_ring_secret_name(plugin_name: &str) -> String {
    format!("{plugin_name}-credential-keys")
}

/// A key id: 4 bytes, written as 8 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 4]);

impl Kid {
    /// A random key id.
    pub fn random() -> Self {
        let mut kid = [0u8; 4];
        rand::fill(&mut kid);
        Kid(kid)
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({self})")
    }
}

impl FromStr for Kid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower_hex = s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut out = [0u8; 4];
        if !lower_hex || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(format!(
                "{s:?} is not a key id (8 lowercase hex characters)"
            ));
        }
        Ok(Kid(out))
    }
}

impl Serialize for Kid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Kid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A 256-bit credential key. `Debug` redacts; wiped on drop; serializes as standard base64.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct CredentialKey([u8; KEY_LEN]);

impl CredentialKey {
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn random() -> Self {
        let mut key = Self([0; KEY_LEN]);
        rand::fill(&mut key.0);
        key
    }

    /// Raw key bytes from a Secret value; anything but exactly 32 bytes is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, String> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("a key must be {KEY_LEN} raw bytes, found {}", bytes.len()))?;
        Ok(Self(arr))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for CredentialKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for CredentialKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let encoded = zeroize::Zeroizing::new(String::deserialize(d)?);
        let raw = zeroize::Zeroizing::new(
            STANDARD
                .decode(encoded.as_bytes())
                .map_err(|_| serde::de::Error::custom("credential key is not base64"))?,
        );
        CredentialKey::from_slice(&raw).map_err(serde::de::Error::custom)
    }
}

/// The keys of one plugin: `active` signs new credentials, every key verifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRing {
    pub active: Kid,
    pub keys: BTreeMap<Kid, CredentialKey>,
}

impl KeyRing {
    /// A ring of one fresh random key, which signs.
    pub fn generate() -> Self {
        let kid = Kid::random();
        KeyRing {
            active: kid,
            keys: [(kid, CredentialKey::random())].into(),
        }
    }

    /// The signing key and its id.
    pub fn signing(&self) -> Option<(Kid, &CredentialKey)> {
        self.keys.get(&self.active).map(|k| (self.active, k))
    }

    /// The data of the key ring Secret: `active` and one entry per kid.
    pub fn to_secret_data(&self) -> BTreeMap<String, ByteString> {
        let mut data: BTreeMap<String, ByteString> = self
            .keys
            .iter()
            .map(|(kid, key)| (kid.to_string(), ByteString(key.expose().to_vec())))
            .collect();
        data.insert(
            ACTIVE_ENTRY.to_owned(),
            ByteString(self.active.to_string().into_bytes()),
        );
        data
    }

    /// Reads a key ring from the data of a Secret (entry name to raw bytes). Every problem is
    /// reported, in entry order; values are never quoted.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut keys = BTreeMap::new();
        let mut active = None;
        let mut saw_active = false;
        for (entry, value) in data {
            if entry == ACTIVE_ENTRY {
                saw_active = true;
                match std::str::from_utf8(value).map(|s| s.trim().parse::<Kid>()) {
                    Ok(Ok(kid)) => active = Some(kid),
                    _ => errors.push(format!(
                        "entry {ACTIVE_ENTRY:?} must hold a key id (8 lowercase hex characters)"
                    )),
                }
                continue;
            }
            let kid = match entry.parse::<Kid>() {
                Ok(kid) => kid,
                Err(e) => {
                    errors.push(format!("entry {entry:?}: {e}"));
                    continue;
                }
            };
            match CredentialKey::from_slice(value) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(e) => errors.push(format!("entry {entry:?}: {e}")),
            }
        }
        match active {
            None if !saw_active => errors.push(format!("entry {ACTIVE_ENTRY:?} is missing")),
            None => {}
            Some(kid) if !keys.contains_key(&kid) && errors.is_empty() => errors.push(format!(
                "entry {ACTIVE_ENTRY:?} names key {kid}, which is not present"
            )),
            Some(_) => {}
        }
        match active {
            Some(active) if errors.is_empty() => Ok(KeyRing { active, keys }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn reads_a_ring_with_an_active_key_and_a_verify_only_key() {
        let ring = KeyRing::from_secret_data(&data(&[
            ("active", b"0a0b0c0d"),
            ("0a0b0c0d", &[1u8; 32]),
            ("01020304", &[2u8; 32]),
        ]))
        .unwrap();
        assert_eq!(ring.active, Kid([10, 11, 12, 13]));
        assert_eq!(ring.keys.len(), 2);
        assert_eq!(ring.signing().unwrap().1.expose(), &[1u8; 32]);
    }

    #[test]
    fn reports_every_problem_without_quoting_values() {
        let err = KeyRing::from_secret_data(&data(&[
            ("active", b"nothex!!"),
            ("0A0B0C0D", &[1u8; 32]),
            ("01020304", b"short-secret-value"),
        ]))
        .unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err.iter().all(|e| !e.contains("short-secret-value")));
    }

    #[test]
    fn active_must_name_a_present_key() {
        let err =
            KeyRing::from_secret_data(&data(&[("active", b"ffffffff"), ("01020304", &[2u8; 32])]))
                .unwrap_err();
        assert_eq!(
            err,
            vec!["entry \"active\" names key ffffffff, which is not present"]
        );
        let err = KeyRing::from_secret_data(&data(&[("01020304", &[2u8; 32])])).unwrap_err();
        assert_eq!(err, vec!["entry \"active\" is missing"]);
    }

    #[test]
    fn a_generated_ring_reads_back_from_its_secret_data() {
        let mut ring = KeyRing::generate();
        let other = KeyRing::generate();
        assert_ne!(other.active, ring.active, "kids are random");
        assert_ne!(
            other.keys[&other.active], ring.keys[&ring.active],
            "keys are random"
        );
        ring.keys.extend(other.keys);
        let data: BTreeMap<String, Vec<u8>> = ring
            .to_secret_data()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        assert_eq!(data[ACTIVE_ENTRY], ring.active.to_string().into_bytes());
        assert_eq!(KeyRing::from_secret_data(&data).unwrap(), ring);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = CredentialKey::new([0x41; 32]);
        assert_eq!(format!("{key:?}"), "[redacted]");
    }

    #[test]
    fn serde_round_trip() {
        let ring = KeyRing {
            active: Kid([0xde, 0xad, 0xbe, 0xef]),
            keys: [(Kid([0xde, 0xad, 0xbe, 0xef]), CredentialKey::new([7; 32]))].into(),
        };
        let json = serde_json::to_string(&ring).unwrap();
        assert!(
            json.starts_with(r#"{"active":"deadbeef","keys":{"deadbeef":""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<KeyRing>(&json).unwrap(), ring);
    }
}
