//! In a cluster: the non-secret config from ConfigMap `wxgate-<service>` through the API
//! (watch, so an apply takes effect in seconds) and the secret config from the mounted Secret
//! `wxgate-<service>` (reloaded when the kubelet swaps the `..data` link).

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use wxgate_crds::render::{
    CONFIG_ENTRY, RenderedConfig, RenderedSecret, SECRET_ENTRY, rendered_object_name,
};

use super::{Publisher, watch};
use crate::active::Active;

/// Where the service account's namespace is mounted in a pod.
const SA_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The namespace: `--namespace`, else the pod's service account namespace.
pub fn namespace(flag: Option<&str>) -> anyhow::Result<String> {
    if let Some(ns) = flag {
        return Ok(ns.to_owned());
    }
    std::fs::read_to_string(SA_NAMESPACE)
        .map(|s| s.trim().to_owned())
        .map_err(|e| anyhow::anyhow!("no --namespace and cannot read {SA_NAMESPACE}: {e}"))
}

/// Reads the mounted secret config.
pub fn read_secret(dir: &Path) -> Result<RenderedSecret, String> {
    let path = dir.join(SECRET_ENTRY);
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // serde's message could quote a value: report only where it broke.
    serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: invalid at line {} column {}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Parses the config entry of the ConfigMap.
pub fn parse_config(cm: &ConfigMap) -> Result<RenderedConfig, String> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_ENTRY))
        .ok_or_else(|| format!("ConfigMap has no entry {CONFIG_ENTRY}"))?;
    serde_json::from_str(text).map_err(|e| format!("ConfigMap entry {CONFIG_ENTRY}: {e}"))
}

/// Watches the ConfigMap and the Secret folder until either source fails for good.
pub async fn run(
    client: Client,
    namespace: String,
    service: String,
    secret_dir: PathBuf,
    publisher: Publisher,
) -> anyhow::Result<()> {
    let name = rendered_object_name(&service);
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut configmaps = watcher::watcher(api, config).default_backoff().boxed();
    let (_watcher, mut secret_changes) = watch::folder(&secret_dir)?;
    let mut current: Option<RenderedConfig> = None;
    let compile = |config: &Option<RenderedConfig>| -> Result<Active, String> {
        let config = config
            .as_ref()
            .ok_or_else(|| format!("ConfigMap {namespace}/{name} not seen yet"))?;
        let secret = read_secret(&secret_dir)?;
        Active::compile(config, &secret).map_err(|e| e.to_string())
    };
    loop {
        tokio::select! {
            event = configmaps.next() => match event {
                Some(Ok(Event::Apply(cm) | Event::InitApply(cm))) => {
                    match parse_config(&cm) {
                        Ok(c) => {
                            current = Some(c);
                            publisher.publish(compile(&current));
                        }
                        Err(e) => publisher.publish(Err(e)),
                    }
                }
                Some(Ok(Event::Delete(_))) => {
                    publisher.publish(Err(format!("ConfigMap {namespace}/{name} was deleted")));
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "ConfigMap watch failed; retrying"),
                None => anyhow::bail!("ConfigMap watch ended"),
            },
            changed = watch::next(&mut secret_changes) => {
                if !changed {
                    anyhow::bail!("Secret folder watch ended");
                }
                publisher.publish(compile(&current));
            }
        }
    }
}
