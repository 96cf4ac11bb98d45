//! Credential key rings: created when a login plugin has none, rotated in stages so that no
//! valid credential is ever rejected (DESIGN.md section 4):
//!
//! 1. every `keyRotationDays` a new key is added **verify-only** (sidecars learn it);
//! 2. after the propagation window it becomes `active` (signs), and the old one is retired;
//! 3. a retired key stays verify-only for the longest TTL the plugin has had, plus clock skew
//!    and the propagation window, then it is removed.
//!
//! The schedule lives in the annotation [`STATE_ANNOTATION`] of the operator's own key ring
//! Secret. A key ring a user created (without the operator's label) is never touched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid};

/// Annotation holding the [`RingState`] of an operator-managed key ring.
pub const STATE_ANNOTATION: &str = "wxgate.dev/key-ring";
/// Credential clock skew the sidecars allow, in seconds.
const SKEW_SECS: i64 = 60;

/// When each key was made, activated and retired (Unix seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingState {
    pub keys: BTreeMap<Kid, KeyTimes>,
    /// The longest `ttlMinutes` the plugin has had while this ring existed.
    #[serde(default)]
    pub max_ttl_minutes: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTimes {
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<i64>,
}

/// An operator-managed key ring and its schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    pub keys: KeyRing,
    pub state: RingState,
}

/// How long the stages take. Days are a parameter so tests can run a rotation in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Seconds in a "day" of `keyRotationDays` (86400 outside tests).
    pub day_secs: i64,
    /// Time for a new key to reach every sidecar before it signs (the kubelet refreshes
    /// mounted Secrets within about a minute; the default leaves a wide margin).
    pub propagation_secs: i64,
}

/// The plugin settings the schedule depends on.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub rotation_days: u32,
    pub ttl_minutes: u32,
}

/// Moves a ring one step along its schedule at `now`; returns the ring and the Unix time of
/// the next stage. `new_key` makes a fresh key and its kid (random outside tests); a kid already
/// in the ring is never reused.
pub fn step(
    ring: Option<Ring>,
    policy: Policy,
    schedule: Schedule,
    now: i64,
    mut new_key: impl FnMut() -> (Kid, CredentialKey),
) -> (Ring, i64) {
    let rotation = i64::from(policy.rotation_days) * schedule.day_secs;
    let mut ring = match ring {
        Some(r) => r,
        None => {
            let (kid, key) = new_key();
            let state = RingState {
                keys: [(
                    kid,
                    KeyTimes {
                        created: now,
                        activated: Some(now),
                        retired: None,
                    },
                )]
                .into(),
                max_ttl_minutes: policy.ttl_minutes,
            };
            return (
                Ring {
                    keys: KeyRing {
                        active: kid,
                        keys: [(kid, key)].into(),
                    },
                    state,
                },
                now + rotation,
            );
        }
    };
    let state = &mut ring.state;
    let keys = &mut ring.keys;
    state.max_ttl_minutes = state.max_ttl_minutes.max(policy.ttl_minutes);
    // Keys the state does not know (a ring from an older operator) count as made now.
    for kid in keys.keys.keys() {
        state.keys.entry(*kid).or_insert(KeyTimes {
            created: now,
            activated: None,
            retired: None,
        });
    }
    state.keys.retain(|kid, _| keys.keys.contains_key(kid));
    let active_since = {
        let t = state.keys.entry(keys.active).or_insert(KeyTimes {
            created: now,
            activated: Some(now),
            retired: None,
        });
        *t.activated.get_or_insert(t.created)
    };
    let pending = |state: &RingState, active: Kid| {
        state
            .keys
            .iter()
            .find(|(k, t)| **k != active && t.activated.is_none() && t.retired.is_none())
            .map(|(k, t)| (*k, t.created))
    };

    // 1. Time to rotate: add the next key, verify-only.
    if pending(state, keys.active).is_none() && now >= active_since + rotation {
        let (kid, key) = std::iter::repeat_with(&mut new_key)
            .find(|(kid, _)| !keys.keys.contains_key(kid))
            .expect("an endless supply of keys");
        state.keys.insert(
            kid,
            KeyTimes {
                created: now,
                activated: None,
                retired: None,
            },
        );
        keys.keys.insert(kid, key);
    }
    // 2. Propagated: the pending key signs, the old one retires.
    if let Some((kid, created)) = pending(state, keys.active)
        && now >= created + schedule.propagation_secs
    {
        if let Some(old) = state.keys.get_mut(&keys.active) {
            old.retired = Some(now);
        }
        if let Some(new) = state.keys.get_mut(&kid) {
            new.activated = Some(now);
        }
        keys.active = kid;
    }
    // 3. Retired long enough: no valid credential can still use it.
    let keep_for = i64::from(state.max_ttl_minutes) * 60 + SKEW_SECS + schedule.propagation_secs;
    let expired: Vec<Kid> = state
        .keys
        .iter()
        .filter(|(k, t)| **k != keys.active && t.retired.is_some_and(|r| now >= r + keep_for))
        .map(|(k, _)| *k)
        .collect();
    for kid in expired {
        state.keys.remove(&kid);
        keys.keys.remove(&kid);
    }

    let active_since = state
        .keys
        .get(&keys.active)
        .and_then(|t| t.activated)
        .unwrap_or(now);
    let mut next = match pending(state, keys.active) {
        Some((_, created)) => created + schedule.propagation_secs,
        None => active_since + rotation,
    };
    for t in state.keys.values() {
        if let Some(r) = t.retired {
            next = next.min(r + keep_for);
        }
    }
    (ring, next.max(now + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Schedule = Schedule {
        day_secs: 100,
        propagation_secs: 10,
    };
    const P: Policy = Policy {
        rotation_days: 3,
        ttl_minutes: 1,
    };

    fn keys() -> impl FnMut() -> (Kid, CredentialKey) {
        let mut n = 0u8;
        move || {
            n += 1;
            (Kid([0, 0, 0, n]), CredentialKey::new([n; 32]))
        }
    }

    fn kid(s: &str) -> Kid {
        s.parse().expect("a kid")
    }

    fn active(ring: &Ring) -> String {
        ring.keys.active.to_string()
    }

    #[test]
    fn a_rotation_runs_in_stages_and_never_drops_a_key_too_early() {
        let mut new_key = keys();
        let (ring, next) = step(None, P, S, 0, &mut new_key);
        assert_eq!(
            (active(&ring).as_str(), ring.keys.keys.len(), next),
            ("00000001", 1, 300)
        );

        // Before the rotation time: nothing changes.
        let (ring, next) = step(Some(ring), P, S, 299, &mut new_key);
        assert_eq!((ring.keys.keys.len(), next), (1, 300));

        // Stage 1: a verify-only key appears; the old key still signs.
        let (ring, next) = step(Some(ring), P, S, 300, &mut new_key);
        assert_eq!(
            (active(&ring).as_str(), ring.keys.keys.len(), next),
            ("00000001", 2, 310)
        );

        // Stage 2: after propagation the new key signs; the old one verifies for ttl + skew + propagation.
        let (ring, next) = step(Some(ring), P, S, 310, &mut new_key);
        assert_eq!(
            (active(&ring).as_str(), ring.keys.keys.len()),
            ("00000002", 2)
        );
        assert_eq!(next, 310 + 60 + 60 + 10);
        let (ring, _) = step(Some(ring), P, S, 439, &mut new_key);
        assert_eq!(ring.keys.keys.len(), 2, "still within the longest TTL");

        // Stage 3: the old key goes.
        let (ring, next) = step(Some(ring), P, S, 440, &mut new_key);
        assert_eq!(
            (active(&ring).as_str(), ring.keys.keys.len()),
            ("00000002", 1)
        );
        assert_eq!(next, 310 + 300);
    }

    #[test]
    fn the_longest_ttl_ever_seen_decides_how_long_old_keys_stay() {
        let mut new_key = keys();
        let long = Policy {
            ttl_minutes: 10,
            ..P
        };
        let (ring, _) = step(None, long, S, 0, &mut new_key);
        let (ring, _) = step(Some(ring), P, S, 300, &mut new_key); // ttl shortened to 1 minute
        let (ring, _) = step(Some(ring), P, S, 310, &mut new_key);
        let (ring, _) = step(Some(ring), P, S, 310 + 61 + 10 + 60, &mut new_key);
        assert!(
            ring.keys.keys.contains_key(&kid("00000001")),
            "issued with the 10-minute TTL: may still be valid"
        );
        let (ring, _) = step(Some(ring), P, S, 310 + 600 + 60 + 9, &mut new_key);
        assert!(ring.keys.keys.contains_key(&kid("00000001")));
        let (ring, _) = step(Some(ring), P, S, 310 + 600 + 60 + 10, &mut new_key);
        assert!(
            !ring.keys.keys.contains_key(&kid("00000001")),
            "gone once the longest TTL has passed"
        );
    }

    #[test]
    fn a_ring_without_state_is_adopted() {
        let ring = Ring {
            keys: KeyRing {
                active: kid("aaaaaaaa"),
                keys: [(kid("aaaaaaaa"), CredentialKey::new([1; 32]))].into(),
            },
            state: RingState::default(),
        };
        let (ring, next) = step(Some(ring), P, S, 1000, keys());
        assert_eq!(ring.state.keys[&kid("aaaaaaaa")].activated, Some(1000));
        assert_eq!(next, 1300);
    }
}
