//! The pure render function: GatewayPlugins, PluginBindings and Secrets in, the config of one
//! bound Service out, or every problem that prevents it.
//!
//! Rendering fails closed: one problem in any binding of the Service means no new config, so
//! the sidecar keeps its last good one rather than leaving a route unprotected.

pub mod config;
pub mod contract;
mod routes;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;

pub use config::*;
pub use secrets::secret_data;

use crate::binding::PluginBinding;
use crate::plugin::GatewayPlugin;
use crate::problem::{Kind, Problem, Reason};
use crate::{key_of, name_of, namespace_of};

/// Everything render may look at. Objects of other namespaces or Services are ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inputs<'a> {
    pub plugins: &'a [GatewayPlugin],
    pub bindings: &'a [PluginBinding],
    pub secrets: &'a [Secret],
}

/// The rendered ConfigMap and Secret content of one Service.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub config: RenderedConfig,
    pub secret: RenderedSecret,
}

/// Bindings targeting a Service, in name order.
pub fn bindings_for<'a>(
    service: &ServiceRef,
    bindings: &'a [PluginBinding],
) -> Vec<&'a PluginBinding> {
    let mut out: Vec<_> = bindings
        .iter()
        .filter(|b| {
            namespace_of(&b.metadata) == service.namespace && b.spec.target_ref.name == service.name
        })
        .collect();
    out.sort_by_key(|b| name_of(&b.metadata));
    out
}

/// Every Service some binding targets.
pub fn bound_services(bindings: &[PluginBinding]) -> BTreeSet<ServiceRef> {
    bindings
        .iter()
        .map(|b| ServiceRef::new(namespace_of(&b.metadata), &b.spec.target_ref.name))
        .collect()
}

/// Renders the config of one Service from its bindings, their plugins and those plugins'
/// Secrets. Problems are returned sorted and each names its object and field.
pub fn render(service: &ServiceRef, inputs: Inputs<'_>) -> Result<Rendered, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut plugins = BTreeMap::new();
    let mut plugin_secrets = BTreeMap::new();
    let mut routes = Vec::new();

    for binding in bindings_for(service, inputs.bindings) {
        let binding_key = key_of(&binding.metadata);
        let errors = binding.spec.validate();
        if !errors.is_empty() {
            problems.extend(Problem::from_field_errors(
                Kind::PluginBinding,
                &binding_key,
                errors,
            ));
            continue;
        }
        let Some(plugin) = inputs.plugins.iter().find(|p| {
            namespace_of(&p.metadata) == service.namespace
                && name_of(&p.metadata) == binding.spec.plugin_ref.name
        }) else {
            problems.push(Problem::new(
                Kind::PluginBinding,
                &binding_key,
                Reason::PluginNotFound,
                "spec.pluginRef.name",
                format!(
                    "GatewayPlugin {}/{} not found",
                    service.namespace, binding.spec.plugin_ref.name
                ),
            ));
            continue;
        };
        let plugin_key = key_of(&plugin.metadata);
        if !plugins.contains_key(&plugin_key) {
            match render_plugin(plugin, inputs.secrets) {
                Ok((rendered, secret)) => {
                    if let Some(secret) = secret {
                        plugin_secrets.insert(plugin_key.clone(), secret);
                    }
                    plugins.insert(plugin_key.clone(), rendered);
                }
                Err(mut p) => {
                    problems.append(&mut p);
                    continue;
                }
            }
        }
        let plugin_type = plugin.spec.plugin_type;
        match &binding.spec.apis {
            None => routes.push(Route {
                binding: binding_key.clone(),
                plugin: plugin_key.clone(),
                plugin_type,
                api: None,
            }),
            Some(apis) => routes.extend(apis.iter().map(|api| Route {
                binding: binding_key.clone(),
                plugin: plugin_key.clone(),
                plugin_type,
                api: Some(routes::normalize(api.into())),
            })),
        }
    }

    for group in routes::conflicts(&routes) {
        let plugins: BTreeSet<&str> = group.iter().map(|r| r.plugin.as_str()).collect();
        for route in &group {
            let at = route
                .api
                .as_ref()
                .map_or("the whole Service".to_owned(), |a| {
                    format!("{:?} {}", a.match_type, a.path)
                });
            problems.push(Problem::new(
                Kind::PluginBinding,
                &route.binding,
                Reason::Conflict,
                if route.api.is_some() {
                    "spec.apis"
                } else {
                    "spec"
                },
                format!(
                    "{at} of Service {service} is bound to different {:?} plugins: {}",
                    route.plugin_type,
                    plugins.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    if !problems.is_empty() {
        problems.sort_by(|a, b| (a.kind, &a.object, &a.field).cmp(&(b.kind, &b.object, &b.field)));
        problems.dedup();
        return Err(problems);
    }

    routes::sort(&mut routes);
    routes.dedup();
    let config = RenderedConfig {
        format: FORMAT,
        version: String::new(),
        service: service.clone(),
        plugins,
        routes,
    }
    .seal();
    let secret = RenderedSecret {
        format: FORMAT,
        version: String::new(),
        plugins: plugin_secrets,
    }
    .seal();
    Ok(Rendered { config, secret })
}

/// One plugin's settings and, for a login plugin, its secret material; or every problem with
/// its spec and Secrets.
pub fn render_plugin(
    plugin: &GatewayPlugin,
    secrets: &[Secret],
) -> Result<(RenderedPlugin, Option<PluginSecret>), Vec<Problem>> {
    let key = key_of(&plugin.metadata);
    let errors = plugin.spec.validate();
    if !errors.is_empty() {
        return Err(Problem::from_field_errors(
            Kind::GatewayPlugin,
            &key,
            errors,
        ));
    }
    if let Some(tag) = &plugin.spec.tag {
        return Ok((RenderedPlugin::Tag(tag.into()), None));
    }
    let Some(login) = &plugin.spec.wechat_mp_login else {
        return Err(vec![Problem::new(
            Kind::GatewayPlugin,
            &key,
            Reason::InvalidSpec,
            "spec",
            "no settings block for the plugin's type",
        )]);
    };
    let secret = secrets::resolve(
        namespace_of(&plugin.metadata),
        name_of(&plugin.metadata),
        login,
        secrets,
    )
    .map_err(|problems| {
        problems
            .into_iter()
            .map(|(reason, field, message)| {
                Problem::new(Kind::GatewayPlugin, &key, reason, field, message)
            })
            .collect::<Vec<_>>()
    })?;
    let config = LoginConfig {
        code: (&login.code).into(),
        login_paths: login.login.as_ref().map(|l| l.paths.clone()),
        session: (&login.session).into(),
        forward: (&login.forward).into(),
        tags: login.tags.as_ref().map(Into::into),
        phone: login.phone.as_ref().map(Into::into),
        open_api: login.open_api,
        app_id_param: login.app_id_param.as_ref().map(Into::into),
        platform: login.platform,
    };
    Ok((
        RenderedPlugin::WeChatMpLogin(Box::new(config)),
        Some(secret),
    ))
}

#[cfg(test)]
mod tests;
