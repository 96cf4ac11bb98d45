//! Config reloads: manifest edits under load with no failed request, a broken edit keeping the
//! last good config, and the kubelet's atomic `..data` swap of a mounted Secret.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_under_load_fail_no_request_and_broken_edits_keep_the_last_good_config() {
    let env = Arc::new(Env::start(Setup::default()).await);
    let credential = env.login("alice_1").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (env, credential, stop, ok, failed) = (
            Arc::clone(&env),
            credential.clone(),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match env
                    .http
                    .get(env.url("/orders"))
                    .header("user_session", &credential)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let mut reloads = 0;
    for i in 0..20 {
        let before = env.sidecar.active.version();
        if i % 5 == 4 {
            // Broken edits: YAML that does not parse, and a spec that does not validate.
            let broken = if i % 10 == 4 {
                "kind: [unclosed".to_owned()
            } else {
                manifests(&Setup::default().login("    session: { ttlMinutes: 0 }\n"))
            };
            env.write(&broken);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(
                env.sidecar.active.version(),
                before,
                "a broken edit keeps the last good config"
            );
        } else {
            let ttl = 100 + i;
            env.reload(&manifests(&Setup::default().login(&format!(
                "    login: {{ paths: [/login] }}\n    session: {{ ttlMinutes: {ttl} }}\n"
            ))))
            .await;
            reloads += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} requests failed during {reloads} reloads ({ok} succeeded)"
    );
    assert!(ok > 100, "load was applied: {ok}");
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("wxgate_config_reloads_total{result=\"error\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_mounted_secret_swapped_through_data_is_read_anew() {
    use wxgate_sidecar::source::cluster::read_secret;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The kubelet's AtomicWriter layout: secret.json -> ..data/secret.json, ..data -> ..<timestamp>.
    let write_version = |name: &str, version: &str| {
        let d = root.join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("secret.json"),
            format!(r#"{{"format":1,"version":"{version}","plugins":{{}}}}"#),
        )
        .unwrap();
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
    };
    write_version("..2026_11_23_1", "first");
    std::os::unix::fs::symlink("..data/secret.json", root.join("secret.json")).unwrap();
    assert_eq!(read_secret(root).unwrap().version, "first");

    let (_watcher, mut changes) = wxgate_sidecar::source::watch_folder(root).unwrap();
    write_version("..2026_11_23_2", "second");
    let fired = tokio::time::timeout(
        Duration::from_secs(5),
        wxgate_sidecar::source::next_change(&mut changes),
    )
    .await;
    assert_eq!(fired, Ok(true), "the swap was noticed");
    assert_eq!(read_secret(root).unwrap().version, "second");

    std::fs::write(root.join("..2026_11_23_2/secret.json"), "{ not json CANARY").unwrap();
    let err = read_secret(root).unwrap_err();
    assert!(
        err.contains("invalid at line 1") && !err.contains("CANARY"),
        "{err}"
    );
}
