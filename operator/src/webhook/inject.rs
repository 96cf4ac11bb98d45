//! Whether and how to inject the sidecar into a Pod: a pure function of the Pod, its
//! namespace, the bound Services there and the sidecar settings, so every case has a golden
//! test.
//!
//! The sidecar takes the Service's traffic without NET_ADMIN: when the Service targets a
//! **named** port, the sidecar's traffic port gets that name (so the Service's endpoints point at
//! the sidecar) and the app's port is renamed `wxgate-app` (its probes follow); `--upstream` is
//! the app's port number. A numeric targetPort cannot be taken over this way: the sidecar is
//! injected anyway, with an admission warning that such traffic bypasses it.
//!
//! Termination, so a rolling restart drops no request: the sidecar and the app are ordinary
//! containers, both told to stop when the pod is deleted. The sidecar gets a `preStop` sleep of
//! `shutdown_delay_seconds` (it keeps serving while the endpoint removal reaches every node's
//! kube-proxy), then SIGTERM: it stops accepting and lets open requests finish. The app gets a
//! `preStop` sleep of twice that, so it outlives the sidecar's last request. (A native sidecar,
//! an init container with `restartPolicy: Always`, is stopped *after* the app: the wrong order
//! for a proxy in front of it.) An app container with a `preStop` of its own keeps it, with a
//! warning.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe, Service, SleepAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

/// Name of the injected container.
pub const CONTAINER: &str = "wxgate-sidecar";
/// Pod annotation to opt out (`"false"`).
pub const INJECT_ANNOTATION: &str = "wxgate.dev/inject";
/// Pod annotation the webhook sets: the Service the sidecar serves.
pub const INJECTED_ANNOTATION: &str = "wxgate.dev/injected";
/// New name of the app's port that the Service targeted by name.
pub const APP_PORT_NAME: &str = "wxgate-app";
pub const TRAFFIC_PORT: i32 = 15080;
pub const ADMIN_PORT: i32 = 15090;
/// Namespaces never touched, whatever their labels.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// What the injected container looks like.
#[derive(Clone, Debug)]
pub struct Settings {
    pub image: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Where the sidecar exports spans (`WXGATE_OTLP_ENDPOINT`), if anywhere.
    pub otlp_endpoint: Option<String>,
    /// Where the sidecar calls WeChat (`WXGATE_WECHAT_API_BASE`); none: WeChat itself. For tests
    /// and simulators only.
    pub wechat_api_base: Option<String>,
    /// Where the sidecar calls QQ (`WXGATE_QQ_API_BASE`, for `platform: qq` plugins); none: QQ
    /// itself. For tests and simulators only.
    pub qq_api_base: Option<String>,
    /// The sidecar's `preStop` sleep; the app's is twice this (see the module docs).
    pub shutdown_delay_seconds: u32,
    /// The sidecar's open-API port on the pod's loopback (`--open-api-listen 127.0.0.1:PORT`),
    /// if any. It serves only AppIDs whose plugin sets `openApi: true`, so a plugin asking for it
    /// later takes effect without restarting pods.
    pub open_api_port: Option<u16>,
    /// Credentials each login plugin of the sidecar remembers once verified
    /// (`--credential-cache`).
    pub credential_cache: usize,
    /// The operator's own namespace, never injected.
    pub own_namespace: String,
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// No change, and why (for the log).
    Skip(String),
    /// The JSON patch and warnings for the user.
    Inject {
        patch: json_patch::Patch,
        warnings: Vec<String>,
    },
}

pub fn decide(pod: &Pod, namespace: &str, bound: &[Service], settings: &Settings) -> Decision {
    if SYSTEM_NAMESPACES.contains(&namespace) || namespace == settings.own_namespace {
        return Decision::Skip(format!("namespace {namespace} is never injected"));
    }
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    if annotations
        .get(INJECT_ANNOTATION)
        .is_some_and(|v| v == "false")
    {
        return Decision::Skip(format!("annotation {INJECT_ANNOTATION}=false"));
    }
    let Some(spec) = &pod.spec else {
        return Decision::Skip("no spec".into());
    };
    if spec.host_network == Some(true) {
        return Decision::Skip("hostNetwork pods are never injected".into());
    }
    if spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == CONTAINER)
    {
        return Decision::Skip("already injected".into());
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut matching: Vec<&Service> = bound.iter().filter(|s| selects(s, &labels)).collect();
    matching.sort_by_key(|s| s.metadata.name.clone());
    let Some(service) = matching.first() else {
        return Decision::Skip("no bound Service selects the pod".into());
    };
    let service_name = service.metadata.name.clone().unwrap_or_default();
    let mut warnings = Vec::new();
    if matching.len() > 1 {
        warnings.push(format!(
            "wxgate: several bound Services select this pod ({}); the sidecar serves {service_name}",
            matching.iter().filter_map(|s| s.metadata.name.clone()).collect::<Vec<_>>().join(", ")
        ));
    }
    let Some(port) = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
    else {
        return Decision::Skip(format!("Service {service_name} has no ports"));
    };
    let target = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));

    let original = serde_json::to_value(pod).unwrap_or_default();
    let mut mutated = pod.clone();
    let Some(spec) = mutated.spec.as_mut() else {
        return Decision::Skip("no spec".into());
    };
    let (upstream, traffic_name) = match target {
        IntOrString::Int(n) => {
            warnings.push(format!(
                "wxgate: Service {service_name} targets port {n} by number, so its traffic reaches the app directly and bypasses wxgate; name the app's port and target that name"
            ));
            (n, "wxgate".to_owned())
        }
        IntOrString::String(name) => {
            let found = spec.containers.iter_mut().find_map(|c| {
                let port = c
                    .ports
                    .iter_mut()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))?;
                port.name = Some(APP_PORT_NAME.to_owned());
                let number = port.container_port;
                Some((c, number))
            });
            let Some((app, number)) = found else {
                return Decision::Skip(format!(
                    "no container port named {name:?}, which Service {service_name} targets"
                ));
            };
            for probe in [
                &mut app.readiness_probe,
                &mut app.liveness_probe,
                &mut app.startup_probe,
            ]
            .into_iter()
            .flatten()
            {
                rename_probe_port(probe, &name);
            }
            if let Some(warning) = outlive_the_sidecar(app, settings.shutdown_delay_seconds) {
                warnings.push(warning);
            }
            (number, name)
        }
    };
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    let delay = i64::from(settings.shutdown_delay_seconds);
    if grace < 3 * delay {
        warnings.push(format!(
            "wxgate: terminationGracePeriodSeconds {grace} is under {}s, so a stopping pod may be killed while the sidecar still drains; give it at least that",
            3 * delay
        ));
    }
    spec.containers
        .push(container(settings, &service_name, upstream, &traffic_name));
    // The projected token needs an account; the ServiceAccount admission plugin would set this
    // same default, but not every API server runs it before webhooks.
    spec.service_account_name
        .get_or_insert_with(|| "default".to_owned());
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.extend(volumes_for(&service_name));
    mutated
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(INJECTED_ANNOTATION.into(), service_name);
    let mutated = serde_json::to_value(&mutated).unwrap_or_default();
    Decision::Inject {
        patch: json_patch::diff(&original, &mutated),
        warnings,
    }
}

fn selects(service: &Service, labels: &BTreeMap<String, String>) -> bool {
    match service.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(selector) if !selector.is_empty() => {
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        }
        _ => false,
    }
}

/// The app keeps serving for twice the sidecar's delay after its pod starts terminating, unless
/// it has a `preStop` of its own (then a warning).
fn outlive_the_sidecar(app: &mut Container, delay: u32) -> Option<String> {
    if delay == 0 {
        return None;
    }
    let lifecycle = app.lifecycle.get_or_insert_with(Default::default);
    if lifecycle.pre_stop.is_some() {
        return Some(format!(
            "wxgate: container {} has a preStop hook of its own, so wxgate does not delay its stop; keep it serving for {}s after termination starts, or a rolling restart can fail requests the sidecar still forwards",
            app.name,
            2 * delay
        ));
    }
    lifecycle.pre_stop = Some(sleep(2 * delay));
    None
}

fn sleep(seconds: u32) -> LifecycleHandler {
    LifecycleHandler {
        sleep: Some(SleepAction {
            seconds: i64::from(seconds),
        }),
        ..Default::default()
    }
}

/// A probe that named the app's port now names its new name.
fn rename_probe_port(probe: &mut Probe, old: &str) {
    let new = IntOrString::String(APP_PORT_NAME.to_owned());
    let is_old = |p: &IntOrString| *p == IntOrString::String(old.to_owned());
    if let Some(h) = probe.http_get.as_mut().filter(|h| is_old(&h.port)) {
        h.port = new.clone();
    }
    if let Some(t) = probe.tcp_socket.as_mut().filter(|t| is_old(&t.port)) {
        t.port = new;
    }
}

fn container(settings: &Settings, service: &str, upstream: i32, traffic_name: &str) -> Container {
    let mut env = vec![
        json!({"name": "WXGATE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    ];
    for (name, value) in [
        ("WXGATE_OTLP_ENDPOINT", &settings.otlp_endpoint),
        ("WXGATE_WECHAT_API_BASE", &settings.wechat_api_base),
        ("WXGATE_QQ_API_BASE", &settings.qq_api_base),
    ] {
        if let Some(value) = value {
            env.push(json!({"name": name, "value": value}));
        }
    }
    let mut args = vec![
        "--service".to_owned(),
        service.to_owned(),
        "--upstream".to_owned(),
        format!("http://127.0.0.1:{upstream}"),
        "--listen".to_owned(),
        format!("0.0.0.0:{TRAFFIC_PORT}"),
        "--admin-listen".to_owned(),
        format!("0.0.0.0:{ADMIN_PORT}"),
        "--credential-cache".to_owned(),
        settings.credential_cache.to_string(),
    ];
    if let Some(port) = settings.open_api_port {
        args.extend(["--open-api-listen".to_owned(), format!("127.0.0.1:{port}")]);
    }
    let mut sidecar: Container = serde_json::from_value(json!({
        "name": CONTAINER,
        "image": settings.image,
        "args": args,
        "env": env,
        "ports": [
            {"name": traffic_name, "containerPort": TRAFFIC_PORT, "protocol": "TCP"},
            {"name": "wxgate-admin", "containerPort": ADMIN_PORT, "protocol": "TCP"}
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": ADMIN_PORT}, "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": ADMIN_PORT}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"memory": settings.memory_limit}
        },
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
        },
        "volumeMounts": [
            {"name": "wxgate-secret", "mountPath": "/var/run/wxgate/secret", "readOnly": true},
            {"name": "wxgate-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
        ]
    }))
    .unwrap_or_default();
    if settings.shutdown_delay_seconds > 0 {
        sidecar.lifecycle = Some(k8s_openapi::api::core::v1::Lifecycle {
            pre_stop: Some(sleep(settings.shutdown_delay_seconds)),
            ..Default::default()
        });
    }
    sidecar
}

/// The Secret (mounted into the sidecar only) and a projected token for the sidecar's watch.
fn volumes_for(service: &str) -> Vec<k8s_openapi::api::core::v1::Volume> {
    serde_json::from_value(json!([
        {"name": "wxgate-secret", "secret": {"secretName": format!("wxgate-{service}"), "optional": true}},
        {"name": "wxgate-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}}
    ]))
    .unwrap_or_default()
}
