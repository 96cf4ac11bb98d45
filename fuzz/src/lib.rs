//! What the fuzz targets share: the quickstart's manifests with a fixed key ring, rendered and
//! compiled once, a credential minted with the layout the README documents, and a split of
//! the fuzz input into a mode byte and the rest.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use wxgate_crds::keys::KeyRing;
use wxgate_crds::manifests::{self, Objects};
use wxgate_crds::render::{self, Rendered, ServiceRef};
use wxgate_sidecar::active::Active;
use wxgate_sidecar::credential::Sealer;

/// One single-threaded runtime for the targets that run async code.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

/// The quickstart's manifests (plugin, binding, APPSECRET Secret, Tag plugin).
pub const QUICKSTART: [&str; 4] = [
    include_str!("../../examples/quickstart/plugin.yaml"),
    include_str!("../../examples/quickstart/binding.yaml"),
    include_str!("../../examples/quickstart/secret.yaml"),
    include_str!("../../examples/quickstart/tags.yaml"),
];

/// The login plugin's key ring Secret, with one fixed key.
pub const KEY_RING: &str = "apiVersion: v1
kind: Secret
metadata: { name: mp-login-credential-keys }
data:
  active: MGEwYjBjMGQ=
  0a0b0c0d: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
";

pub const KID: [u8; 4] = [0x0a, 0x0b, 0x0c, 0x0d];
pub const KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
pub const APP_ID: &str = "wx0123456789abcdef";
pub const PLUGIN: &str = "default/mp-login";
pub const SERVICE: &str = "shop-api";
/// The clock the credential targets use (Unix seconds).
pub const NOW: i64 = 1_800_000_000;

/// Every manifest above as one multi-document YAML text.
pub fn manifests_text() -> String {
    let mut docs: Vec<&str> = QUICKSTART.to_vec();
    docs.push(KEY_RING);
    docs.join("\n---\n")
}

pub fn objects() -> Objects {
    manifests::parse(&manifests_text()).expect("the quickstart manifests parse")
}

/// The ConfigMap and Secret content the operator would write for the quickstart's Service.
pub static RENDERED: LazyLock<Rendered> = LazyLock::new(|| {
    let service = ServiceRef {
        namespace: "default".into(),
        name: SERVICE.into(),
    };
    render::render(&service, objects().inputs()).expect("the quickstart renders")
});

/// The quickstart's config, compiled as the sidecar runs it.
pub static ACTIVE: LazyLock<Active> = LazyLock::new(|| {
    Active::compile(&RENDERED.config, &RENDERED.secret).expect("the quickstart compiles")
});

/// The login plugin's sealer.
pub static SEALER: LazyLock<Sealer> = LazyLock::new(|| {
    let data: BTreeMap<String, Vec<u8>> = [
        ("active".to_owned(), hex::encode(KID).into_bytes()),
        (hex::encode(KID), KEY.to_vec()),
    ]
    .into();
    let ring = KeyRing::from_secret_data(&data).expect("a valid key ring");
    Sealer::new(&ring, &[APP_ID], PLUGIN).expect("the ring has its active key")
});

/// A credential holding `plaintext` as its claims, sealed as the README documents it:
/// `v1.` + base64url(kid | nonce | ciphertext | tag), AES-256-GCM, the associated data
/// `wxgate/v1` then kid, appid and plugin, each as a 4-byte big-endian length and the bytes.
pub fn mint(plaintext: &[u8]) -> String {
    let mut aad = b"wxgate/v1".to_vec();
    for part in [&KID[..], APP_ID.as_bytes(), PLUGIN.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    let nonce = [7u8; 12];
    let cipher = Aes256Gcm::new(&KEY.into());
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("AES-GCM seals a short message");
    let mut raw = KID.to_vec();
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&sealed);
    format!("v1.{}", URL_SAFE_NO_PAD.encode(raw))
}

/// The first byte of an input chooses what a target does with the rest.
pub fn mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(m, rest)| (*m, rest))
}
