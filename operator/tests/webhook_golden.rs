//! Golden files for sidecar injection: each `data/webhook/<case>.yaml` holds a Pod (with its
//! namespace) and the bound Services of that namespace; `<case>.expected.json` holds the JSON
//! patch and warnings, or why nothing is injected. `UPDATE_GOLDEN=1` rewrites the expected files
//! (review the diff).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Pod, Service};
use wxgate_operator::webhook::inject::{Decision, Settings, decide};

fn settings() -> Settings {
    Settings {
        image: "wxgate/wxgate-sidecar:test".into(),
        cpu_request: "10m".into(),
        memory_request: "16Mi".into(),
        memory_limit: "64Mi".into(),
        otlp_endpoint: None,
        wechat_api_base: None,
        qq_api_base: None,
        shutdown_delay_seconds: 5,
        open_api_port: Some(15081),
        credential_cache: 4096,
        own_namespace: "wxgate-system".into(),
    }
}

fn load(path: &PathBuf) -> (Pod, String, Vec<Service>) {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pod: Pod = serde_json::from_value(docs[0].clone()).unwrap();
    let ns = pod.metadata.namespace.clone().unwrap();
    let services = docs[1..]
        .iter()
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .collect();
    (pod, ns, services)
}

fn render(decision: &Decision) -> serde_json::Value {
    match decision {
        Decision::Skip(why) => serde_json::json!({ "skip": why }),
        Decision::Inject { patch, warnings } => {
            serde_json::json!({ "patch": patch, "warnings": warnings })
        }
    }
}

#[test]
fn every_case_matches_its_golden_file_and_injection_is_idempotent() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/webhook");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden cases missing");
    for case in cases {
        let (pod, ns, services) = load(&case);
        let decision = decide(&pod, &ns, &services, &settings());
        let got = serde_json::to_string_pretty(&render(&decision)).unwrap() + "\n";
        let expected_path = case.with_extension("expected.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &got).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert!(
            got == expected,
            "{}: got\n{got}\nexpected\n{expected}",
            case.display()
        );

        // Applying the patch and reviewing again changes nothing.
        if let Decision::Inject { patch, .. } = decision {
            let mut doc = serde_json::to_value(&pod).unwrap();
            json_patch::patch(&mut doc, &patch).unwrap();
            let injected: Pod = serde_json::from_value(doc).unwrap();
            let spec = injected.spec.as_ref().unwrap();
            let sidecar = spec
                .containers
                .iter()
                .find(|c| c.name == "wxgate-sidecar")
                .unwrap();
            let sc = sidecar.security_context.as_ref().unwrap();
            assert_eq!(
                (
                    sc.run_as_non_root,
                    sc.read_only_root_filesystem,
                    sc.allow_privilege_escalation
                ),
                (Some(true), Some(true), Some(false))
            );
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_owned()][..])
            );
            for app in spec
                .containers
                .iter()
                .filter(|c| c.name != "wxgate-sidecar")
            {
                let mounts = app.volume_mounts.iter().flatten();
                assert!(
                    mounts
                        .clone()
                        .all(|m| m.name != "wxgate-secret" && m.name != "wxgate-token"),
                    "{}: the Secret is mounted into the sidecar only",
                    case.display()
                );
            }
            assert_eq!(
                decide(&injected, &ns, &services, &settings()),
                Decision::Skip("already injected".into()),
                "{}",
                case.display()
            );
        }
    }
}

#[test]
fn an_otlp_endpoint_and_the_api_bases_reach_the_injected_sidecar() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/webhook");
    let (pod, ns, services) = load(&dir.join("named-port.yaml"));
    let with = Settings {
        otlp_endpoint: Some("http://otel-collector.observability:4318".into()),
        wechat_api_base: Some("http://wechat-sim.sim:18081".into()),
        qq_api_base: Some("http://wechat-sim.sim:18081/qq".into()),
        ..settings()
    };
    let env_of = |settings: &Settings| {
        let Decision::Inject { patch, .. } = decide(&pod, &ns, &services, settings) else {
            panic!("not injected");
        };
        let mut doc = serde_json::to_value(&pod).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        let injected: Pod = serde_json::from_value(doc).unwrap();
        let sidecar = injected
            .spec
            .unwrap()
            .containers
            .into_iter()
            .find(|c| c.name == "wxgate-sidecar")
            .unwrap();
        sidecar
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect::<Vec<_>>()
    };
    for (name, value) in [
        (
            "WXGATE_OTLP_ENDPOINT",
            "http://otel-collector.observability:4318",
        ),
        ("WXGATE_WECHAT_API_BASE", "http://wechat-sim.sim:18081"),
        ("WXGATE_QQ_API_BASE", "http://wechat-sim.sim:18081/qq"),
    ] {
        assert!(env_of(&with).contains(&(name.to_owned(), Some(value.to_owned()))));
        assert!(env_of(&settings()).iter().all(|(n, _)| n != name));
    }
}

#[test]
fn no_shutdown_delay_means_no_pre_stop_hooks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/webhook");
    let (pod, ns, services) = load(&dir.join("named-port.yaml"));
    let none = Settings {
        shutdown_delay_seconds: 0,
        open_api_port: None,
        credential_cache: 4096,
        ..settings()
    };
    let Decision::Inject { patch, warnings } = decide(&pod, &ns, &services, &none) else {
        panic!("not injected");
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut doc = serde_json::to_value(&pod).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    let injected: Pod = serde_json::from_value(doc).unwrap();
    for c in injected.spec.unwrap().containers {
        assert!(
            c.lifecycle.and_then(|l| l.pre_stop).is_none(),
            "{} has a preStop",
            c.name
        );
    }
}
