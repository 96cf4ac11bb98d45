//! Standalone mode: the YAML manifests a user would `kubectl apply` (GatewayPlugin,
//! PluginBinding, Secret; several documents per file), read from a folder, rendered with the
//! same function as the operator, and reloaded on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use wxgate_crds::keys::{KeyRing, key_ring_secret_name};
use wxgate_crds::manifests::{self, Objects};
use wxgate_crds::plugin::PluginType;
use wxgate_crds::render::{self, ServiceRef};
use wxgate_crds::{name_of, namespace_of};

use super::{Publisher, watch};
use crate::active::Active;

/// Reads the folder now and after every change, until the watcher fails.
pub async fn run(
    dir: PathBuf,
    service: Option<String>,
    publisher: Publisher,
) -> anyhow::Result<()> {
    let (_watcher, mut changes) = watch::folder(&dir)?;
    let mut keys = EphemeralKeys::default();
    publisher.publish(load(&dir, service.as_deref(), &mut keys));
    while watch::next(&mut changes).await {
        publisher.publish(load(&dir, service.as_deref(), &mut keys));
    }
    Ok(())
}

/// Reads, renders and compiles the manifests of a folder.
pub fn load(dir: &Path, service: Option<&str>, keys: &mut EphemeralKeys) -> Result<Active, String> {
    compile(read_folder(dir)?, service, keys)
}

/// Renders and compiles parsed manifests for one Service (`--service`, or the only one bound).
pub fn compile(
    mut objects: Objects,
    service: Option<&str>,
    keys: &mut EphemeralKeys,
) -> Result<Active, String> {
    let service = pick_service(&objects, service)?;
    keys.supply(&mut objects);
    let rendered = render::render(&service, objects.inputs()).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if rendered.config.routes.is_empty() {
        return Err(format!("no PluginBinding targets Service {service}"));
    }
    Active::compile(&rendered.config, &rendered.secret).map_err(|e| e.to_string())
}

fn read_folder(dir: &Path) -> Result<Objects, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut objects = Objects::default();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = manifests::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        objects.extend(parsed);
    }
    Ok(objects)
}

/// `--service NAME` or `NAMESPACE/NAME`, or the only Service any binding targets.
fn pick_service(objects: &Objects, wanted: Option<&str>) -> Result<ServiceRef, String> {
    let bound = render::bound_services(&objects.bindings);
    let found: Vec<&ServiceRef> = match wanted {
        Some(w) => bound
            .iter()
            .filter(|s| match w.split_once('/') {
                Some((ns, name)) => s.namespace == ns && s.name == name,
                None => s.name == w,
            })
            .collect(),
        None => bound.iter().collect(),
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(match wanted {
            Some(w) => format!("no PluginBinding targets Service {w}"),
            None => "no PluginBinding found".to_owned(),
        }),
        many => Err(format!(
            "bindings target several Services ({}); choose one with --service",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Keys generated for login plugins that have no `<plugin>-credential-keys` Secret: one per
/// plugin for the life of the process, so credentials survive reloads but not restarts.
#[derive(Default)]
pub struct EphemeralKeys {
    rings: BTreeMap<(String, String), Secret>,
}

impl EphemeralKeys {
    fn supply(&mut self, objects: &mut Objects) {
        for plugin in objects
            .plugins
            .iter()
            .filter(|p| p.spec.plugin_type == PluginType::WeChatMpLogin)
        {
            let (ns, name) = (
                namespace_of(&plugin.metadata).to_owned(),
                name_of(&plugin.metadata).to_owned(),
            );
            let ring_name = key_ring_secret_name(&name);
            let present = objects
                .secrets
                .iter()
                .any(|s| namespace_of(&s.metadata) == ns && name_of(&s.metadata) == ring_name);
            if present {
                continue;
            }
            let secret = self.rings.entry((ns.clone(), name.clone())).or_insert_with(|| {
                tracing::warn!(
                    plugin = %format!("{ns}/{name}"),
                    "no Secret {ring_name}: using a key generated for this process; credentials will not survive a restart"
                );
                let mut secret = Secret::default();
                secret.metadata.name = Some(ring_name.clone());
                secret.metadata.namespace = Some(ns.clone());
                secret.data = Some(KeyRing::generate().to_secret_data());
                secret
            });
            objects.secrets.push(secret.clone());
        }
    }
}
