//! The login-state credential (DESIGN.md section 5).
//!
//! `v1.` + base64url-no-pad of `kid (4) || nonce (12) || ciphertext || tag (16)`, AES-256-GCM
//! with a fresh random nonce. Associated data: `wxgate/v1`, then kid, appid and plugin identity
//! (`<namespace>/<name>`), each as a 4-byte big-endian length and the bytes. The plaintext is
//! compact JSON claims; unknown fields are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use wxgate_crds::keys::{KeyRing, Kid};
use wxgate_crds::secret::SecretString;

use crate::ids::{is_session_key, is_wechat_id};
use crate::wechat::phone::Phone;

/// Prefix of every credential of this format.
pub const PREFIX: &str = "v1.";
/// Clock skew tolerated on `iat` and `exp`, in seconds.
pub const SKEW_SECS: i64 = 60;
/// Longest credential accepted before any decoding (a real one is a few hundred bytes).
pub const MAX_LEN: usize = 4096;

const KID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"wxgate/v1";

/// What a credential says about the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub openid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub appid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<SecretString>,
    /// The phone number, with `phone.keepInCredential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
}

impl Claims {
    /// The claims of a new credential for the user WeChat vouched for, issued at `now` and valid
    /// for `ttl_minutes` (no tags, session key or phone: set them after).
    pub fn issue(
        openid: String,
        unionid: Option<String>,
        appid: String,
        now: i64,
        ttl_minutes: u32,
    ) -> Self {
        Claims {
            openid,
            unionid,
            appid,
            iat: 0,
            exp: 0,
            jti: String::new(),
            tags: None,
            sk: None,
            phone: None,
        }
        .reissued(now, ttl_minutes)
    }

    /// The same claims on a new credential (a renewal): issued at `now`, valid for
    /// `ttl_minutes`, with a fresh id.
    pub fn reissued(self, now: i64, ttl_minutes: u32) -> Self {
        Claims {
            iat: now,
            exp: now + i64::from(ttl_minutes) * 60,
            jti: new_jti(),
            ..self
        }
    }

    /// Whether `exp` has passed at `now`, beyond the skew.
    fn expired(&self, now: i64) -> bool {
        self.exp + SKEW_SECS < now
    }

    /// Whether the identity can reach the app whole: the same checks as WeChat's answer
    /// (openid and unionid charset, a base64 session_key). A credential that fails them is
    /// refused, never forwarded with part of its identity.
    fn forwardable(&self) -> bool {
        is_wechat_id(&self.openid)
            && self.unionid.as_deref().is_none_or(is_wechat_id)
            && self.sk.as_ref().is_none_or(|k| is_session_key(k.expose()))
            && self.phone.as_ref().is_none_or(Phone::is_well_formed)
    }
}

/// Why a credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed, tampered, unknown key, wrong app or plugin, or issued in the future.
    Invalid,
    /// Past `exp` (beyond the skew).
    Expired,
}

/// The keys of one login plugin, ready to seal and open, bound to its mini programs' AppIDs and
/// its identity: a credential verifies only for the AppID it was sealed for (its associated
/// data), which must be one of the plugin's.
pub struct Sealer {
    active: Kid,
    ciphers: BTreeMap<Kid, Aes256Gcm>,
    /// Per AppID, in the plugin's order: the associated data per kid (fixed per kid, app and
    /// plugin).
    apps: Vec<(String, BTreeMap<Kid, Vec<u8>>)>,
    plugin: String,
    /// Credentials already opened, by their exact text (`--credential-cache`): a user's later
    /// requests skip the decoding, decryption and JSON. Only credentials that passed [`open`]
    /// get in, expiry is checked on every use, and the cache goes with the sealer (with its key
    /// ring, on every reload).
    ///
    /// [`open`]: Sealer::open
    seen: Option<quick_cache::sync::Cache<Box<str>, Arc<Claims>>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("active", &self.active)
            .field("kids", &self.ciphers.keys().collect::<Vec<_>>())
            .field("app_ids", &self.app_ids().collect::<Vec<_>>())
            .field("plugin", &self.plugin)
            .field("remembered", &self.seen.as_ref().map_or(0, |c| c.len()))
            .finish()
    }
}

impl Sealer {
    /// `None` when the ring's active key is missing (render never produces such a ring) or no
    /// AppID is given.
    pub fn new(ring: &KeyRing, app_ids: &[&str], plugin: &str) -> Option<Self> {
        ring.signing()?;
        if app_ids.is_empty() {
            return None;
        }
        let ciphers = ring
            .keys
            .iter()
            .map(|(kid, key)| (*kid, Aes256Gcm::new(key.expose().into())))
            .collect();
        let apps = app_ids
            .iter()
            .map(|app_id| {
                let aads = ring
                    .keys
                    .keys()
                    .map(|kid| (*kid, aad(*kid, app_id, plugin)))
                    .collect();
                ((*app_id).to_owned(), aads)
            })
            .collect();
        Some(Self {
            active: ring.active,
            ciphers,
            apps,
            plugin: plugin.to_owned(),
            seen: None,
        })
    }

    /// Remembers up to `entries` opened credentials (none with 0).
    pub fn remember(&mut self, entries: usize) {
        self.seen = (entries > 0).then(|| quick_cache::sync::Cache::new(entries));
    }

    /// Every AppID the plugin serves, the first one first.
    pub fn app_ids(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|(id, _)| id.as_str())
    }

    /// Seals claims with the active key and a fresh random nonce.
    pub fn seal(&self, claims: &Claims) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        self.seal_with_nonce(claims, nonce)
    }

    /// Seals with a given nonce: only for fixed test vectors; a nonce must never repeat.
    pub(crate) fn seal_with_nonce(&self, claims: &Claims, nonce: [u8; NONCE_LEN]) -> String {
        let kid = self.active;
        // Serializing plain strings and integers cannot fail.
        let plaintext = serde_json::to_vec(claims).unwrap_or_default();
        let mut buf = Vec::with_capacity(KID_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        buf.extend_from_slice(&kid.0);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(&plaintext);
        let cipher = &self.ciphers[&kid];
        // Claims are issued only for one of the plugin's AppIDs; any other seals for the first,
        // so its credential never verifies as the app it names.
        let aads = self
            .apps
            .iter()
            .find(|(id, _)| *id == claims.appid)
            .unwrap_or(&self.apps[0]);
        let aad = &aads.1[&kid];
        let tag = cipher
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                aad,
                (&mut buf[KID_LEN + NONCE_LEN..]).into(),
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a short message cannot fail"));
        buf.extend_from_slice(&tag);
        let mut out = String::with_capacity(PREFIX.len() + buf.len().div_ceil(3) * 4);
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
        out
    }

    /// [`open`](Sealer::open), through the cache of credentials already opened: one seen before
    /// is only checked for expiry.
    pub fn verify(
        &self,
        credential: &str,
        now: i64,
        hint: Option<&str>,
    ) -> Result<Arc<Claims>, Rejection> {
        let Some(seen) = self.seen.as_ref().filter(|_| credential.len() <= MAX_LEN) else {
            return self.open(credential, now, hint).map(Arc::new);
        };
        if let Some(claims) = seen.get(credential) {
            if claims.expired(now) {
                seen.remove(credential);
                return Err(Rejection::Expired);
            }
            return Ok(claims);
        }
        let claims = Arc::new(self.open(credential, now, hint)?);
        seen.insert(credential.into(), Arc::clone(&claims));
        Ok(claims)
    }

    /// Opens and checks a credential at time `now` (Unix seconds). It is tried for each of the
    /// plugin's AppIDs, `hint` first (the AppID the request's Referer names): the one whose
    /// associated data authenticates it is the credential's, and its claims must name it.
    pub fn open(
        &self,
        credential: &str,
        now: i64,
        hint: Option<&str>,
    ) -> Result<Claims, Rejection> {
        if credential.len() > MAX_LEN {
            return Err(Rejection::Invalid);
        }
        let encoded = credential.strip_prefix(PREFIX).ok_or(Rejection::Invalid)?;
        // Decoded on the stack: a credential is checked on every request.
        let mut raw = [0u8; MAX_LEN / 4 * 3];
        let len = URL_SAFE_NO_PAD
            .decode_slice(encoded, &mut raw)
            .map_err(|_| Rejection::Invalid)?;
        let buf = &mut raw[..len];
        if buf.len() < KID_LEN + NONCE_LEN + TAG_LEN + 2 {
            return Err(Rejection::Invalid);
        }
        let kid = Kid(buf[..KID_LEN].try_into().map_err(|_| Rejection::Invalid)?);
        let cipher = self.ciphers.get(&kid).ok_or(Rejection::Invalid)?;
        let nonce: [u8; NONCE_LEN] = buf[KID_LEN..KID_LEN + NONCE_LEN]
            .try_into()
            .map_err(|_| Rejection::Invalid)?;
        let tag_at = buf.len() - TAG_LEN;
        let (body, tag) = buf.split_at_mut(tag_at);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Rejection::Invalid)?;
        let sealed = &mut body[KID_LEN + NONCE_LEN..];
        let hinted = self.apps.iter().filter(|(id, _)| Some(id.as_str()) == hint);
        let others = self.apps.iter().filter(|(id, _)| Some(id.as_str()) != hint);
        // The tag is checked before anything is decrypted: a failed try leaves the bytes as
        // they were for the next.
        let app_id = hinted
            .chain(others)
            .find(|(_, aads)| {
                cipher
                    .decrypt_inout_detached(
                        &Nonce::from(nonce),
                        &aads[&kid],
                        (&mut *sealed).into(),
                        &tag.into(),
                    )
                    .is_ok()
            })
            .map(|(id, _)| id)
            .ok_or(Rejection::Invalid)?;
        let claims: Claims = serde_json::from_slice(sealed).map_err(|_| Rejection::Invalid)?;
        if claims.appid != *app_id || claims.iat > now + SKEW_SECS || !claims.forwardable() {
            return Err(Rejection::Invalid);
        }
        if claims.expired(now) {
            return Err(Rejection::Expired);
        }
        Ok(claims)
    }
}

/// The associated data: `wxgate/v1`, then kid, appid and plugin identity, each as a 4-byte
/// big-endian length and the bytes.
fn aad(kid: Kid, app_id: &str, plugin: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 12 + 4 + app_id.len() + plugin.len());
    aad.extend_from_slice(AAD_LABEL);
    for part in [&kid.0[..], app_id.as_bytes(), plugin.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

/// Seconds since the Unix epoch, the clock of `iat` and `exp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fresh random credential id (128 bits, base64url).
pub fn new_jti() -> String {
    let mut id = [0u8; 16];
    rand::fill(&mut id);
    URL_SAFE_NO_PAD.encode(id)
}

#[cfg(test)]
mod tests;
