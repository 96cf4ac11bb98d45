//! Whether and how to inject the sidecar into a Pod: a pure function of the Pod, its
//! namespace, the bound Services there and the sidecar settings, so every case has a golden
//! test.
//!
//! The sidecar takes the Service's traffic without NET_ADMIN: when the Service targets a
//! **named** port, the sidecar's traffic port gets that name (so the Service's endpoints point at
//! the sidecar) and the app's port is renamed `wxgate-app` (its probes follow); `--upstream` is
//! the app's port number. A numeric targetPort cannot be taken over this way: the sidecar is
//! injected anyway, with an admission warning that such traffic bypasses it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Probe, Service};
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
            (number, name)
        }
    };
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

fn container(
    settings: &Settings,
    service: &str,
    upstream: i32,
    traffic_name: &str,
) -> k8s_openapi::api::core::v1::Container {
    let mut env = vec![
        json!({"name": "WXGATE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    ];
    if let Some(endpoint) = &settings.otlp_endpoint {
        env.push(json!({"name": "WXGATE_OTLP_ENDPOINT", "value": endpoint}));
    }
    serde_json::from_value(json!({
        "name": CONTAINER,
        "image": settings.image,
        "args": ["--service", service, "--upstream", format!("http://127.0.0.1:{upstream}"), "--listen", format!("0.0.0.0:{TRAFFIC_PORT}"), "--admin-listen", format!("0.0.0.0:{ADMIN_PORT}")],
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
    .unwrap_or_default()
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
