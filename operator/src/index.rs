//! Which Services (and plugins) a change touches: the mappers from every watched object to the
//! reconciles it must start. Pure functions over the controllers' store snapshots.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wxgate_crds::render::ServiceRef;
use wxgate_crds::{GatewayPlugin, PluginBinding, name_of, namespace_of};

use crate::{MANAGED_BY, SERVICE_LABEL};

/// The Service a binding targets.
pub fn service_of(binding: &PluginBinding) -> ServiceRef {
    ServiceRef::new(
        namespace_of(&binding.metadata),
        &binding.spec.target_ref.name,
    )
}

/// Does this binding apply the plugin `namespace/name`?
fn uses_plugin(binding: &PluginBinding, namespace: &str, name: &str) -> bool {
    namespace_of(&binding.metadata) == namespace && binding.spec.plugin_ref.name == name
}

/// The Service a binding targets, and every Service whose rendered objects still list the
/// binding as an owner: it was moved to another Service, or deleted, and those configs must
/// drop it.
pub fn services_of_binding<'a>(
    binding: &PluginBinding,
    rendered: impl IntoIterator<Item = &'a ObjectMeta>,
) -> BTreeSet<ServiceRef> {
    let mut out = BTreeSet::from([service_of(binding)]);
    if let Some(uid) = binding.metadata.uid.as_deref() {
        out.extend(
            rendered
                .into_iter()
                .filter(|m| m.owner_references.iter().flatten().any(|o| o.uid == uid))
                .filter_map(service_of_rendered),
        );
    }
    out
}

/// The Services whose bindings apply the plugin `namespace/name`.
pub fn services_using_plugin(
    bindings: &[Arc<PluginBinding>],
    namespace: &str,
    name: &str,
) -> BTreeSet<ServiceRef> {
    bindings
        .iter()
        .filter(|b| uses_plugin(b, namespace, name))
        .map(|b| service_of(b))
        .collect()
}

/// The plugins of a namespace that read the Secret `namespace/secret` (credentials or key ring).
pub fn plugins_reading<'a>(
    plugins: &'a [Arc<GatewayPlugin>],
    namespace: &'a str,
    secret: &'a str,
) -> impl Iterator<Item = &'a Arc<GatewayPlugin>> + 'a {
    plugins.iter().filter(move |p| {
        namespace_of(&p.metadata) == namespace
            && p.spec
                .referenced_secrets(name_of(&p.metadata))
                .iter()
                .any(|s| s == secret)
    })
}

/// The Services whose bindings apply a plugin that reads the Secret `namespace/secret`.
pub fn services_reading_secret(
    plugins: &[Arc<GatewayPlugin>],
    bindings: &[Arc<PluginBinding>],
    namespace: &str,
    secret: &str,
) -> BTreeSet<ServiceRef> {
    plugins_reading(plugins, namespace, secret)
        .flat_map(|p| services_using_plugin(bindings, namespace, name_of(&p.metadata)))
        .collect()
}

/// The Service `namespace/name`, when some binding targets it (other Services are not ours).
pub fn bound_service(
    bindings: &[Arc<PluginBinding>],
    namespace: &str,
    name: &str,
) -> Option<ServiceRef> {
    let service = ServiceRef::new(namespace, name);
    bindings
        .iter()
        .any(|b| service_of(b) == service)
        .then_some(service)
}

/// The Service an object the operator rendered belongs to (its labels), if it is one.
pub fn service_of_rendered(meta: &ObjectMeta) -> Option<ServiceRef> {
    let labels = meta.labels.as_ref()?;
    if labels.get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1) {
        return None;
    }
    Some(ServiceRef::new(
        meta.namespace.as_deref()?,
        labels.get(SERVICE_LABEL)?,
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn binding(ns: &str, name: &str, plugin: &str, service: &str) -> Arc<PluginBinding> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding",
                "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")},
                "spec": {"pluginRef": {"name": plugin}, "targetRef": {"name": service}}
            }))
            .unwrap(),
        )
    }

    fn plugin(ns: &str, name: &str, secret: &str) -> Arc<GatewayPlugin> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "wxgate.dev/v1alpha1", "kind": "GatewayPlugin",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"type": "WeChatMpLogin", "wechatMpLogin": {"appId": "wx0123456789abcdef", "credentialsSecretRef": {"name": secret}}}
            }))
            .unwrap(),
        )
    }

    fn rendered(ns: &str, service: &str, owners: &[&str]) -> ObjectMeta {
        ObjectMeta {
            name: Some(format!("wxgate-{service}")),
            namespace: Some(ns.into()),
            labels: Some(
                [
                    (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                    (SERVICE_LABEL.to_owned(), service.to_owned()),
                ]
                .into(),
            ),
            owner_references: Some(
                owners
                    .iter()
                    .map(|uid| OwnerReference {
                        uid: (*uid).to_owned(),
                        ..OwnerReference::default()
                    })
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn svc(ns: &str, name: &str) -> ServiceRef {
        ServiceRef::new(ns, name)
    }

    #[test]
    fn a_moved_binding_touches_its_new_and_its_old_service() {
        let moved = binding("shop", "b", "login", "new-api");
        let configs = [
            rendered("shop", "old-api", &["uid-shop-b", "uid-shop-other"]),
            rendered("shop", "unrelated", &["uid-shop-other"]),
        ];
        assert_eq!(
            services_of_binding(&moved, &configs),
            BTreeSet::from([svc("shop", "new-api"), svc("shop", "old-api")])
        );
        assert_eq!(
            services_of_binding(&moved, []),
            BTreeSet::from([svc("shop", "new-api")])
        );
    }

    #[test]
    fn a_plugin_touches_the_services_of_its_bindings_in_its_namespace_only() {
        let bindings = [
            binding("shop", "a", "login", "api"),
            binding("shop", "b", "login", "api"),
            binding("shop", "c", "login", "web"),
            binding("shop", "d", "tags", "admin"),
            binding("other", "e", "login", "api"),
        ];
        assert_eq!(
            services_using_plugin(&bindings, "shop", "login"),
            BTreeSet::from([svc("shop", "api"), svc("shop", "web")])
        );
        assert!(services_using_plugin(&bindings, "shop", "nope").is_empty());
    }

    #[test]
    fn a_secret_touches_the_plugins_reading_it_and_their_services() {
        let plugins = [
            plugin("shop", "login", "creds"),
            plugin("shop", "other", "other-creds"),
            plugin("elsewhere", "login", "creds"),
        ];
        let bindings = [
            binding("shop", "a", "login", "api"),
            binding("shop", "b", "other", "web"),
            binding("elsewhere", "c", "login", "api"),
        ];
        let names = |secret: &str| -> Vec<String> {
            plugins_reading(&plugins, "shop", secret)
                .map(|p| name_of(&p.metadata).to_owned())
                .collect()
        };
        assert_eq!(names("creds"), ["login"]);
        assert_eq!(
            names("login-credential-keys"),
            ["login"],
            "the key ring is read too"
        );
        assert!(names("unrelated").is_empty());
        assert_eq!(
            services_reading_secret(&plugins, &bindings, "shop", "creds"),
            BTreeSet::from([svc("shop", "api")])
        );
    }

    #[test]
    fn only_bound_services_and_rendered_objects_are_ours() {
        let bindings = [binding("shop", "a", "login", "api")];
        assert_eq!(
            bound_service(&bindings, "shop", "api"),
            Some(svc("shop", "api"))
        );
        assert_eq!(bound_service(&bindings, "shop", "web"), None);
        assert_eq!(bound_service(&bindings, "other", "api"), None);
        assert_eq!(
            service_of_rendered(&rendered("shop", "api", &[])),
            Some(svc("shop", "api"))
        );
        let mut foreign = rendered("shop", "api", &[]);
        foreign
            .labels
            .as_mut()
            .unwrap()
            .insert(MANAGED_BY.0.into(), "someone-else".into());
        assert_eq!(service_of_rendered(&foreign), None);
    }
}
