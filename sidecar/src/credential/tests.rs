use proptest::prelude::*;
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid};

use super::*;

const APP: &str = "wx0123456789abcdef";
const PLUGIN: &str = "default/mp-login";
const NOW: i64 = 1_700_000_000;

fn ring(kids: &[([u8; 4], u8)], active: [u8; 4]) -> KeyRing {
    KeyRing {
        active: Kid(active),
        keys: kids
            .iter()
            .map(|(k, fill)| (Kid(*k), CredentialKey::new([*fill; 32])))
            .collect(),
    }
}

fn vector_sealer() -> Sealer {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let ring = KeyRing {
        active: Kid([1, 2, 3, 4]),
        keys: [(Kid([1, 2, 3, 4]), CredentialKey::new(key))].into(),
    };
    Sealer::new(&ring, &[APP], PLUGIN).unwrap()
}

fn claims(iat: i64, ttl: i64) -> Claims {
    Claims {
        openid: "oAlice0123456789".into(),
        unionid: None,
        appid: APP.into(),
        iat,
        exp: iat + ttl,
        jti: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        tags: None,
        sk: None,
        phone: None,
    }
}

/// The worked example of the README, computed independently (Python `cryptography`'s AESGCM):
/// key 00..1f, kid 01020304, nonce 00..0b, appid wx0123456789abcdef, plugin default/mp-login.
const VECTOR: &str = "v1.AQIDBAABAgMEBQYHCAkKCzwguWugi6t_r3u15PCFEQ7m5rYGw09qSg9f3KcxS2HCcXnK3pXjZeBElU3evLIeD9ZgAe85ssa8HbsIcHmX19TBC_ZK4-EWUSxkhkyK937KArv-UkZTY1_Pza7gWprN5OnCe6flAIlb311_8wk0YD77JiPqooRk2wzdKvUq42LcW4QyJleTqLRlnKg";

#[test]
fn fixed_vector_seals_to_the_exact_string_and_opens() {
    let sealer = vector_sealer();
    let c = claims(NOW, 7200);
    assert_eq!(
        sealer.seal_with_nonce(&c, std::array::from_fn(|i| i as u8)),
        VECTOR
    );
    assert_eq!(sealer.open(VECTOR, NOW + 10, None).unwrap(), c);
}

#[test]
fn associated_data_is_exactly_as_documented() {
    let aad = aad(Kid([1, 2, 3, 4]), APP, PLUGIN);
    assert_eq!(
        hex::encode(aad),
        "7778676174652f76310000000401020304000000127778303132333435363738396162636465660000001064656661756c742f6d702d6c6f67696e"
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let sealer = vector_sealer();
    let raw = URL_SAFE_NO_PAD.decode(&VECTOR[3..]).unwrap();
    for bit in 0..raw.len() * 8 {
        let mut flipped = raw.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let token = format!("v1.{}", URL_SAFE_NO_PAD.encode(&flipped));
        assert_eq!(
            sealer.open(&token, NOW, None),
            Err(Rejection::Invalid),
            "bit {bit}"
        );
    }
}

#[test]
fn wrong_app_plugin_or_key_is_rejected() {
    let r = ring(&[([1, 2, 3, 4], 7)], [1, 2, 3, 4]);
    let token = Sealer::new(&r, &[APP], PLUGIN)
        .unwrap()
        .seal(&claims(NOW, 60));
    let other_app = Sealer::new(&r, &["wxffffffffffffffff"], PLUGIN).unwrap();
    let other_plugin = Sealer::new(&r, &[APP], "default/other").unwrap();
    let other_key = Sealer::new(&ring(&[([1, 2, 3, 4], 8)], [1, 2, 3, 4]), &[APP], PLUGIN).unwrap();
    let unknown_kid =
        Sealer::new(&ring(&[([9, 9, 9, 9], 7)], [9, 9, 9, 9]), &[APP], PLUGIN).unwrap();
    for sealer in [other_app, other_plugin, other_key, unknown_kid] {
        assert_eq!(
            sealer.open(&token, NOW, None),
            Err(Rejection::Invalid),
            "{sealer:?}"
        );
    }
}

#[test]
fn a_claimed_appid_that_differs_from_the_plugin_is_rejected() {
    let sealer = vector_sealer();
    let mut c = claims(NOW, 60);
    c.appid = "wxffffffffffffffff".into();
    assert_eq!(
        sealer.open(&sealer.seal(&c), NOW, None),
        Err(Rejection::Invalid)
    );
}

#[test]
fn claims_that_cannot_be_forwarded_whole_are_rejected() {
    // Sealed with the real key, so only the claims checks stand between them and the app.
    let sealer = vector_sealer();
    let bad_ids = [
        "o\r\nX-WX-OPENID: victim",
        "",
        "o victim",
        "o\0",
        "oé",
        &"o".repeat(129),
    ];
    for bad in bad_ids {
        let mut c = claims(NOW, 60);
        c.openid = bad.into();
        assert_eq!(
            sealer.open(&sealer.seal(&c), NOW, None),
            Err(Rejection::Invalid),
            "openid {bad:?}"
        );
        let mut c = claims(NOW, 60);
        c.unionid = Some(bad.into());
        assert_eq!(
            sealer.open(&sealer.seal(&c), NOW, None),
            Err(Rejection::Invalid),
            "unionid {bad:?}"
        );
    }
    for bad in ["", "a\nb", "a-b", "k\r\nX: y"] {
        let mut c = claims(NOW, 60);
        c.sk = Some(SecretString::new(bad.to_owned()));
        assert_eq!(
            sealer.open(&sealer.seal(&c), NOW, None),
            Err(Rejection::Invalid),
            "sk {bad:?}"
        );
    }
}

#[test]
fn expiry_and_issue_time_allow_sixty_seconds_of_skew() {
    let sealer = vector_sealer();
    let token = sealer.seal(&claims(NOW, 600));
    let exp = NOW + 600;
    assert!(sealer.open(&token, exp + 60, None).is_ok());
    assert_eq!(sealer.open(&token, exp + 61, None), Err(Rejection::Expired));
    assert!(
        sealer.open(&token, NOW - 60, None).is_ok(),
        "iat 60 s ahead of our clock"
    );
    assert_eq!(
        sealer.open(&token, NOW - 61, None),
        Err(Rejection::Invalid),
        "iat too far ahead"
    );
}

#[test]
fn malformed_encodings_are_rejected_without_panic() {
    let sealer = vector_sealer();
    let long = format!("v1.{}", "A".repeat(MAX_LEN));
    for bad in [
        "",
        "v1.",
        "w1.AAAA",
        "v1.!!!!",
        "v1.AQIDBA",
        &VECTOR[..40],
        &format!("{VECTOR}="),
        &long,
        "v2.AQIDBAABAgMEBQYHCAkKCzwguWugi6t",
    ] {
        assert_eq!(
            sealer.open(bad, NOW, None),
            Err(Rejection::Invalid),
            "{bad:?}"
        );
    }
}

#[test]
fn rotation_old_key_verifies_after_active_moves() {
    let old = ring(&[([1, 1, 1, 1], 1)], [1, 1, 1, 1]);
    let token = Sealer::new(&old, &[APP], PLUGIN)
        .unwrap()
        .seal(&claims(NOW, 600));
    let rotated = ring(&[([1, 1, 1, 1], 1), ([2, 2, 2, 2], 2)], [2, 2, 2, 2]);
    let sealer = Sealer::new(&rotated, &[APP], PLUGIN).unwrap();
    assert!(sealer.open(&token, NOW, None).is_ok());
    let fresh = sealer.seal(&claims(NOW, 600));
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&fresh[3..]).unwrap()[..4],
        [2, 2, 2, 2]
    );
}

#[test]
fn nonces_never_repeat_and_equal_claims_seal_differently() {
    let sealer = vector_sealer();
    let c = claims(NOW, 60);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100_000 {
        let raw = URL_SAFE_NO_PAD.decode(&sealer.seal(&c)[3..]).unwrap();
        assert!(seen.insert(raw[4..16].to_vec()), "nonce repeated");
    }
}

#[test]
fn session_key_and_tags_round_trip_and_unknown_fields_are_ignored() {
    let sealer = vector_sealer();
    let mut c = claims(NOW, 60);
    c.unionid = Some("uAlice".into());
    c.sk = Some(SecretString::new("c2Vzc2lvbmtleQ=="));
    c.tags = Some([("bucket".to_owned(), "42".to_owned())].into());
    assert_eq!(sealer.open(&sealer.seal(&c), NOW, None).unwrap(), c);
    let extended: Claims = serde_json::from_str(
        r#"{"openid":"o","appid":"wx0123456789abcdef","iat":1,"exp":2,"jti":"j","future":[1,2]}"#,
    )
    .unwrap();
    assert_eq!(extended.openid, "o");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip_any_identity(openid in "[A-Za-z0-9_-]{1,64}", unionid in proptest::option::of("[A-Za-z0-9_-]{1,64}"), ttl in 1i64..2_592_000) {
        let sealer = vector_sealer();
        let mut c = claims(NOW, ttl);
        c.openid = openid;
        c.unionid = unionid;
        prop_assert_eq!(sealer.open(&sealer.seal(&c), NOW, None).unwrap(), c);
    }

    #[test]
    fn any_single_bit_flip_of_any_credential_is_rejected(openid in "[A-Za-z0-9]{1,40}", bit in any::<prop::sample::Index>()) {
        let sealer = vector_sealer();
        let mut c = claims(NOW, 600);
        c.openid = openid;
        let mut raw = URL_SAFE_NO_PAD.decode(&sealer.seal(&c)[3..]).unwrap();
        let i = bit.index(raw.len() * 8);
        raw[i / 8] ^= 1 << (i % 8);
        prop_assert_eq!(sealer.open(&format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw)), NOW, None), Err(Rejection::Invalid));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        let _ = vector_sealer().open(&s, NOW, None);
        let _ = vector_sealer().open(&format!("v1.{s}"), NOW, None);
    }
}

#[test]
fn a_plugin_of_several_apps_opens_each_apps_credential_whatever_the_hint() {
    const B: &str = "wx00000000000000bb";
    let r = ring(&[([1, 2, 3, 4], 7)], [1, 2, 3, 4]);
    let both = Sealer::new(&r, &[APP, B], PLUGIN).unwrap();
    let for_b = Claims {
        appid: B.into(),
        ..claims(NOW, 60)
    };
    let token_b = both.seal(&for_b);
    for hint in [None, Some(APP), Some(B), Some("wxffffffffffffffff")] {
        assert_eq!(
            both.open(&token_b, NOW, hint),
            Ok(for_b.clone()),
            "{hint:?}"
        );
    }
    // Sealed for B, it is B's: a one-app plugin of B opens it, one of A does not.
    assert_eq!(
        Sealer::new(&r, &[B], PLUGIN)
            .unwrap()
            .open(&token_b, NOW, None),
        Ok(for_b)
    );
    assert_eq!(
        Sealer::new(&r, &[APP], PLUGIN)
            .unwrap()
            .open(&token_b, NOW, Some(B)),
        Err(Rejection::Invalid)
    );
    // Claims naming an app the plugin lacks are sealed for its first app, so they never verify.
    let stranger = both.seal(&Claims {
        appid: "wxffffffffffffffff".into(),
        ..claims(NOW, 60)
    });
    assert_eq!(both.open(&stranger, NOW, None), Err(Rejection::Invalid));
    assert!(Sealer::new(&r, &[], PLUGIN).is_none());
}

/// A sealer of the test ring that remembers `entries` opened credentials.
fn remembering(entries: usize) -> Sealer {
    let mut sealer = vector_sealer();
    sealer.remember(entries);
    sealer
}

fn remembered(sealer: &Sealer) -> usize {
    sealer.seen.as_ref().map_or(0, |c| c.len())
}

#[test]
fn a_remembered_credential_gives_its_claims_until_it_expires_and_is_then_forgotten() {
    let sealer = remembering(16);
    let token = sealer.seal(&claims(NOW, 600));
    let first = sealer.verify(&token, NOW, None).unwrap();
    assert_eq!(*first, claims(NOW, 600));
    assert_eq!(remembered(&sealer), 1);
    let again = sealer.verify(&token, NOW + 10, Some(APP)).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second use is the remembered claims"
    );
    // Expiry is checked on every use, with the same skew as opening.
    assert!(sealer.verify(&token, NOW + 660, None).is_ok());
    assert_eq!(
        sealer.verify(&token, NOW + 661, None),
        Err(Rejection::Expired)
    );
    assert_eq!(remembered(&sealer), 0, "an expired credential is forgotten");
    assert_eq!(
        sealer.verify(&token, NOW + 661, None),
        Err(Rejection::Expired)
    );
}

#[test]
fn refused_credentials_are_never_remembered() {
    let sealer = remembering(16);
    let token = sealer.seal(&claims(NOW, 600));
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for _ in 0..2 {
        assert_eq!(sealer.verify(&tampered, NOW, None), Err(Rejection::Invalid));
    }
    // Expired, issued in the future or too long: refused, and not remembered.
    assert_eq!(
        sealer.verify(&token, NOW + 700, None),
        Err(Rejection::Expired)
    );
    let future = sealer.seal(&claims(NOW + 120, 600));
    assert_eq!(sealer.verify(&future, NOW, None), Err(Rejection::Invalid));
    let long = format!("{token}{}", "A".repeat(MAX_LEN));
    assert_eq!(sealer.verify(&long, NOW, None), Err(Rejection::Invalid));
    assert_eq!(remembered(&sealer), 0);
    // The one issued in the future verifies once its time comes.
    assert!(sealer.verify(&future, NOW + 120, None).is_ok());
    assert_eq!(remembered(&sealer), 1);
}

#[test]
fn a_credential_remembered_by_one_plugin_is_still_refused_by_another() {
    let r = ring(&[([1, 2, 3, 4], 7)], [1, 2, 3, 4]);
    let mut ours = Sealer::new(&r, &[APP], PLUGIN).unwrap();
    ours.remember(16);
    let mut other = Sealer::new(&r, &[APP], "default/other").unwrap();
    other.remember(16);
    let token = ours.seal(&claims(NOW, 600));
    assert!(ours.verify(&token, NOW, None).is_ok());
    assert_eq!(other.verify(&token, NOW, None), Err(Rejection::Invalid));
    // A ring without the credential's key (a reload) is a new sealer, with nothing remembered.
    let mut rotated =
        Sealer::new(&ring(&[([5, 6, 7, 8], 7)], [5, 6, 7, 8]), &[APP], PLUGIN).unwrap();
    rotated.remember(16);
    assert_eq!(rotated.verify(&token, NOW, None), Err(Rejection::Invalid));
}

#[test]
fn the_cache_holds_at_most_its_entries_and_none_without_it() {
    let sealer = remembering(8);
    for i in 0..100 {
        let token = sealer.seal(&Claims {
            openid: format!("oUser{i}"),
            ..claims(NOW, 600)
        });
        assert_eq!(
            sealer.verify(&token, NOW, None).unwrap().openid,
            format!("oUser{i}")
        );
    }
    assert!(remembered(&sealer) <= 8, "{}", remembered(&sealer));
    let plain = remembering(0);
    let token = plain.seal(&claims(NOW, 600));
    assert_eq!(*plain.verify(&token, NOW, None).unwrap(), claims(NOW, 600));
    assert!(plain.seen.is_none());
}
