//! What a bound Service should look like, decided from what was read: the objects rendered for
//! it (ConfigMap and Secret `wxgate-<service>`, and the Role and RoleBinding that let its
//! sidecars read that ConfigMap) and each binding's conditions. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use wxgate_crds::conditions::{
    ACCEPTED, PROGRAMMED, REASON_ACCEPTED, REASON_PROGRAMMED, REASON_RESOLVED,
    REASON_SERVICE_NOT_FOUND, RESOLVED_REFS,
};
use wxgate_crds::problem::{Kind, Problem, Reason};
use wxgate_crds::render::{CONFIG_ENTRY, Rendered, SECRET_ENTRY, ServiceRef, rendered_object_name};
use wxgate_crds::{PluginBinding, key_of};

use crate::status::Cond;
use crate::{MANAGED_BY, SERVICE_LABEL};

/// The state a Service's reconcile writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The objects to apply; `None` when nothing may be written (the config of the Service is
    /// not updated: the last good one stays).
    pub objects: Option<Objects>,
    /// The conditions of each binding, in the order of the bindings given.
    pub conditions: Vec<Vec<Cond>>,
}

/// Everything rendered for one Service, all named `wxgate-<service>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Objects {
    pub config_map: ConfigMap,
    pub secret: Secret,
    pub role: Role,
    pub role_binding: RoleBinding,
}

/// What reading and rendering found.
#[derive(Clone, Debug)]
pub enum Found {
    Rendered(Box<Rendered>),
    NoService,
    Problems(Vec<Problem>),
}

impl Found {
    pub fn new(rendered: Result<Rendered, Vec<Problem>>, service_exists: bool) -> Self {
        match rendered {
            Ok(r) if service_exists => Found::Rendered(Box::new(r)),
            Ok(_) => Found::NoService,
            Err(problems) => Found::Problems(problems),
        }
    }
}

/// The desired state of `service`, whose `bindings` (sorted by name) rendered as `found`.
pub fn desired(
    service: &ServiceRef,
    bindings: &[PluginBinding],
    found: &Found,
) -> Result<Desired, serde_json::Error> {
    let objects = match found {
        Found::Rendered(r) => Some(objects(service, bindings, r)?),
        Found::NoService | Found::Problems(_) => None,
    };
    let conditions = bindings
        .iter()
        .map(|b| conditions(b, service, found))
        .collect();
    Ok(Desired {
        objects,
        conditions,
    })
}

fn objects(
    service: &ServiceRef,
    bindings: &[PluginBinding],
    rendered: &Rendered,
) -> Result<Objects, serde_json::Error> {
    let name = rendered_object_name(&service.name);
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(service.namespace.clone()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (SERVICE_LABEL.into(), service.name.clone()),
        ])),
        // Owned by every binding of the Service, so it goes with the last of them.
        owner_references: Some(bindings.iter().filter_map(owner_ref).collect()),
        ..ObjectMeta::default()
    };
    let config_map = ConfigMap {
        metadata: metadata.clone(),
        data: Some(BTreeMap::from([(
            CONFIG_ENTRY.to_owned(),
            serde_json::to_string(&rendered.config)?,
        )])),
        ..ConfigMap::default()
    };
    let secret = Secret {
        metadata: metadata.clone(),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            SECRET_ENTRY.to_owned(),
            ByteString(serde_json::to_vec(&rendered.secret)?),
        )])),
        ..Secret::default()
    };
    // The sidecars read their ConfigMap, and nothing else: a Role on that one ConfigMap (list
    // and watch are narrowed by the name field selector the sidecar sends) bound to the
    // namespace's ServiceAccounts. The operator cannot know which account each pod uses without
    // watching Pods; the ConfigMap holds nothing secret. No Secret access is granted: the Secret
    // is mounted into the sidecar container by the webhook.
    let role = Role {
        metadata: metadata.clone(),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec![name.clone()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    };
    let role_binding = RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: format!("system:serviceaccounts:{}", service.namespace),
            namespace: None,
        }]),
    };
    Ok(Objects {
        config_map,
        secret,
        role,
        role_binding,
    })
}

fn owner_ref(binding: &PluginBinding) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: PluginBinding::api_version(&()).into_owned(),
        kind: PluginBinding::kind(&()).into_owned(),
        name: binding.metadata.name.clone()?,
        uid: binding.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// The three conditions of one binding of the Service.
fn conditions(binding: &PluginBinding, service: &ServiceRef, found: &Found) -> Vec<Cond> {
    let me = key_of(&binding.metadata);
    let plugin = format!("{}/{}", service.namespace, binding.spec.plugin_ref.name);
    let problems: &[Problem] = match found {
        Found::Problems(p) => p,
        _ => &[],
    };
    let mine: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.kind == Kind::PluginBinding && p.object == me)
        .collect();
    let spec_problems: Vec<&Problem> = mine
        .iter()
        .copied()
        .filter(|p| matches!(p.reason, Reason::InvalidSpec | Reason::Conflict))
        .collect();
    let accepted = match spec_problems.first() {
        Some(p) => Cond::new(
            ACCEPTED,
            false,
            p.reason.as_str(),
            describe(spec_problems.iter().copied()),
        ),
        None => Cond::new(ACCEPTED, true, REASON_ACCEPTED, "the spec is valid"),
    };
    let ref_problems: Vec<&Problem> = problems
        .iter()
        .filter(|p| {
            (p.kind == Kind::PluginBinding && p.object == me && p.reason == Reason::PluginNotFound)
                || (p.kind == Kind::GatewayPlugin && p.object == plugin)
        })
        .collect();
    let resolved = match (ref_problems.first(), found) {
        (Some(p), _) => Cond::new(
            RESOLVED_REFS,
            false,
            p.reason.as_str(),
            describe(ref_problems.iter().copied()),
        ),
        (None, Found::NoService) => Cond::new(
            RESOLVED_REFS,
            false,
            REASON_SERVICE_NOT_FOUND,
            format!("Service {service} not found"),
        ),
        (None, _) => Cond::new(
            RESOLVED_REFS,
            true,
            REASON_RESOLVED,
            format!("GatewayPlugin {plugin}, its Secrets and Service {service} exist"),
        ),
    };
    let name = rendered_object_name(&service.name);
    let programmed = match found {
        Found::Rendered(r) => Cond::new(
            PROGRAMMED,
            true,
            REASON_PROGRAMMED,
            format!(
                "config {} written to ConfigMap and Secret {}/{name}{}",
                r.config.version,
                service.namespace,
                r.config
                    .tag_overflow()
                    .map(|n| format!("; note: {n}"))
                    .unwrap_or_default()
            ),
        ),
        Found::NoService => Cond::new(
            PROGRAMMED,
            false,
            REASON_SERVICE_NOT_FOUND,
            format!("Service {service} not found; nothing written"),
        ),
        Found::Problems(problems) => {
            let reason = mine
                .first()
                .or(ref_problems.first())
                .map_or("OtherBindingInvalid", |p| p.reason.as_str());
            Cond::new(
                PROGRAMMED,
                false,
                reason,
                format!(
                    "the config of Service {service} is not updated (the last good one stays): {}",
                    describe(problems.iter())
                ),
            )
        }
    };
    vec![accepted, resolved, programmed]
}

fn describe<'a>(problems: impl Iterator<Item = &'a Problem>) -> String {
    problems
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use wxgate_crds::GatewayPlugin;
    use wxgate_crds::render::{Inputs, RenderedConfig, render};

    use super::*;

    fn binding(name: &str, plugin: &str, api: Option<&str>) -> PluginBinding {
        let mut spec =
            serde_json::json!({"pluginRef": {"name": plugin}, "targetRef": {"name": "shop-api"}});
        if let Some(path) = api {
            spec["apis"] = serde_json::json!([{"path": path}]);
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
            "spec": spec
        }))
        .unwrap()
    }

    fn plugin(name: &str, spec: serde_json::Value) -> GatewayPlugin {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "GatewayPlugin",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec
        }))
        .unwrap()
    }

    /// A login plugin `mp` with every WeChat tag field, and a Tag plugin `tags` with `rules`.
    fn plugins(rules: usize) -> Vec<GatewayPlugin> {
        let fields = [
            "appid", "openid", "unionid", "bucket", "nickName", "gender", "language", "city",
            "province", "country",
        ];
        let rules: Vec<_> = (0..rules.max(1))
            .map(|i| serde_json::json!({"from": {"in": "header", "name": format!("x-h{i}")}, "tag": format!("h{i}")}))
            .collect();
        vec![
            plugin(
                "mp",
                serde_json::json!({"type": "WeChatMpLogin", "wechatMpLogin": {
                "appId": "wx0123456789abcdef", "credentialsSecretRef": {"name": "creds"},
                "tags": {"fields": fields}}}),
            ),
            plugin(
                "tags",
                serde_json::json!({"type": "Tag", "tag": {"rules": rules}}),
            ),
        ]
    }

    fn found(bindings: &[PluginBinding], plugins: &[GatewayPlugin], service_exists: bool) -> Found {
        let secrets: Vec<Secret> = [
            serde_json::json!({"metadata": {"name": "creds", "namespace": "shop"}, "stringData": {"appsecret": "s"}}),
            serde_json::json!({"metadata": {"name": "mp-credential-keys", "namespace": "shop"}, "data": {"active": "MDEwMjAzMDQ=", "01020304": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}),
        ]
        .into_iter()
        .map(|s| serde_json::from_value(s).unwrap())
        .collect();
        let rendered = render(
            &service(),
            Inputs {
                plugins,
                bindings,
                secrets: &secrets,
            },
        );
        Found::new(rendered, service_exists)
    }

    fn service() -> ServiceRef {
        ServiceRef::new("shop", "shop-api")
    }

    /// (type, status, reason) of each condition of each binding.
    fn summary(d: &Desired) -> Vec<Vec<(&'static str, bool, String)>> {
        d.conditions
            .iter()
            .map(|cs| {
                cs.iter()
                    .map(|c| (c.type_, c.ok, c.reason.clone()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_rendered_service_gets_four_objects_owned_by_every_binding() {
        let bindings = [
            binding("a", "mp", Some("/orders")),
            binding("b", "mp", Some("/users")),
        ];
        let found = found(&bindings, &plugins(1), true);
        let d = desired(&service(), &bindings, &found).unwrap();
        let o = d.objects.as_ref().expect("objects");
        for meta in [
            &o.config_map.metadata,
            &o.secret.metadata,
            &o.role.metadata,
            &o.role_binding.metadata,
        ] {
            assert_eq!(meta.name.as_deref(), Some("wxgate-shop-api"));
            assert_eq!(meta.namespace.as_deref(), Some("shop"));
            assert_eq!(
                meta.labels.as_ref().unwrap()[SERVICE_LABEL],
                "shop-api",
                "{meta:?}"
            );
            let owners: Vec<&str> = meta
                .owner_references
                .iter()
                .flatten()
                .map(|o| o.uid.as_str())
                .collect();
            assert_eq!(owners, ["uid-a", "uid-b"]);
        }
        let config: RenderedConfig =
            serde_json::from_str(&o.config_map.data.as_ref().unwrap()[CONFIG_ENTRY]).unwrap();
        let Found::Rendered(r) = &found else {
            panic!("rendered")
        };
        assert_eq!(config, r.config);
        assert_eq!(config.routes.len(), 2);
        let rule = &o.role.rules.as_ref().unwrap()[0];
        assert_eq!(
            rule.resource_names.as_deref(),
            Some(&["wxgate-shop-api".to_owned()][..])
        );
        assert_eq!(rule.verbs, ["get", "list", "watch"]);
        assert_eq!(
            o.role_binding.subjects.as_ref().unwrap()[0].name,
            "system:serviceaccounts:shop"
        );
        let ok = vec![
            (ACCEPTED, true, REASON_ACCEPTED.to_owned()),
            (RESOLVED_REFS, true, REASON_RESOLVED.to_owned()),
            (PROGRAMMED, true, REASON_PROGRAMMED.to_owned()),
        ];
        assert_eq!(summary(&d), [ok.clone(), ok]);
        assert!(
            d.conditions[0][2].message.contains(&config.version)
                && !d.conditions[0][2].message.contains("note"),
            "{}",
            d.conditions[0][2].message
        );
    }

    #[test]
    fn a_note_of_the_render_reaches_the_programmed_condition() {
        // 10 WeChat tag fields and 7 Tag rules may meet on one request: 17 > 16.
        let bindings = [binding("a", "mp", None), binding("t", "tags", None)];
        let d = desired(&service(), &bindings, &found(&bindings, &plugins(7), true)).unwrap();
        for conditions in &d.conditions {
            let message = &conditions[2].message;
            assert!(
                message.contains("; note: a request may be due 17 tags"),
                "{message}"
            );
        }
        let d = desired(&service(), &bindings, &found(&bindings, &plugins(6), true)).unwrap();
        assert!(!d.conditions[0][2].message.contains("note"));
    }

    #[test]
    fn one_invalid_binding_blocks_the_service_and_says_so_on_the_others() {
        let bindings = [binding("a", "mp", None), binding("b", "mp", Some("orders"))];
        let d = desired(&service(), &bindings, &found(&bindings, &plugins(1), true)).unwrap();
        assert_eq!(
            d.objects, None,
            "nothing is written: the last good config stays"
        );
        let s = summary(&d);
        assert_eq!(
            s[0][2],
            (PROGRAMMED, false, "OtherBindingInvalid".to_owned()),
            "{s:?}"
        );
        assert_eq!(
            s[1][0],
            (ACCEPTED, false, "InvalidSpec".to_owned()),
            "{s:?}"
        );
        assert!(s[0][0].1 && s[0][1].1, "a itself is fine: {s:?}");
    }

    #[test]
    fn a_missing_service_writes_nothing_and_is_named() {
        let bindings = [binding("a", "mp", None)];
        let d = desired(&service(), &bindings, &found(&bindings, &plugins(1), false)).unwrap();
        assert_eq!(d.objects, None);
        assert_eq!(
            summary(&d),
            [vec![
                (ACCEPTED, true, REASON_ACCEPTED.to_owned()),
                (RESOLVED_REFS, false, REASON_SERVICE_NOT_FOUND.to_owned()),
                (PROGRAMMED, false, REASON_SERVICE_NOT_FOUND.to_owned()),
            ]]
        );
    }
}
