//! The config in effect: the rendered config and secret, compiled once per reload into what
//! the request path needs (ciphers built, names normalized), and swapped atomically.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use wxgate_crds::render::contract::{IDENTITY_HEADERS, PluginType, TagPlugin};
use wxgate_crds::render::{LoginConfig, RenderedConfig, RenderedPlugin, RenderedSecret};
use wxgate_crds::secret::SecretString;
use wxgate_crds::validate::{has_param_prefix, same_param};

use crate::credential::Sealer;
use crate::routing;

/// One mini program of a login plugin.
#[derive(Debug)]
pub struct App {
    pub app_id: String,
    pub app_secret: SecretString,
}

/// A login plugin, ready to serve.
#[derive(Debug)]
pub struct LoginPlugin {
    /// `<namespace>/<name>`.
    pub id: String,
    pub config: LoginConfig,
    /// Its mini programs, the first one first (a one-app plugin has only that one).
    pub apps: Vec<App>,
    pub sealer: Sealer,
}

impl LoginPlugin {
    /// The mini program with this AppID, if it is one of the plugin's.
    pub fn app(&self, app_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.app_id == app_id)
    }

    /// Whether a (normalized) path is one of `login.paths`.
    pub fn is_login_path(&self, path: &str) -> bool {
        self.config
            .login_paths
            .as_ref()
            .is_some_and(|paths| paths.iter().any(|p| routing::same_path(p, path)))
    }
}

/// A route, pointing at its plugin among those of its type.
#[derive(Debug)]
struct Route {
    api: Option<wxgate_crds::render::contract::ApiMatch>,
    plugin: usize,
}

/// Everything the request path reads, built once per config change.
#[derive(Debug)]
pub struct Active {
    /// `<config version>.<secret version>`.
    pub version: String,
    routes: Vec<Route>,
    pub plugins: Vec<LoginPlugin>,
    tag_routes: Vec<Route>,
    tag_plugins: Vec<TagPlugin>,
    /// Parameters stripped from every request (and response): lowercase header names.
    identity: Vec<String>,
}

/// Why a rendered config and secret cannot be used together.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("config format {0} is not supported (this sidecar reads format {1})")]
    Format(u32, u32),
    #[error("the secret has no entry for login plugin {0} (it may not have been updated yet)")]
    MissingSecret(String),
    #[error("the key ring of plugin {0} has no signing key")]
    NoSigningKey(String),
    #[error("route of binding {0} names plugin {1}, which the config lacks")]
    UnknownPlugin(String, String),
}

impl Active {
    /// Each login plugin remembers up to `entries` opened credentials (`--credential-cache`).
    pub fn remember_credentials(&mut self, entries: usize) {
        for plugin in &mut self.plugins {
            plugin.sealer.remember(entries);
        }
    }

    pub fn compile(config: &RenderedConfig, secret: &RenderedSecret) -> Result<Self, CompileError> {
        use wxgate_crds::render::FORMAT;
        for format in [config.format, secret.format] {
            if format != FORMAT {
                return Err(CompileError::Format(format, FORMAT));
            }
        }
        if let Some(note) = config.tag_overflow() {
            tracing::warn!(version = %config.version, "{note}");
        }
        let mut plugins = Vec::new();
        let mut identity: Vec<String> = IDENTITY_HEADERS
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        for (id, plugin) in &config.plugins {
            let RenderedPlugin::WeChatMpLogin(login) = plugin else {
                continue;
            };
            let s = secret
                .plugins
                .get(id)
                .ok_or_else(|| CompileError::MissingSecret(id.clone()))?;
            let apps: Vec<App> = s
                .apps()
                .map(|(app_id, app_secret)| App {
                    app_id: app_id.to_owned(),
                    app_secret: app_secret.clone(),
                })
                .collect();
            let app_ids: Vec<&str> = apps.iter().map(|a| a.app_id.as_str()).collect();
            let sealer = Sealer::new(&s.keys, &app_ids, id)
                .ok_or_else(|| CompileError::NoSigningKey(id.clone()))?;
            for name in login.forward.identity_names() {
                let name = name.to_ascii_lowercase();
                if !identity.iter().any(|n| same_param(n, &name)) {
                    identity.push(name);
                }
            }
            plugins.push(LoginPlugin {
                id: id.clone(),
                config: (**login).clone(),
                apps,
                sealer,
            });
        }
        let tag_ids: Vec<&String> = config
            .plugins
            .iter()
            .filter(|(_, p)| p.plugin_type() == PluginType::Tag)
            .map(|(id, _)| id)
            .collect();
        let tag_plugins: Vec<TagPlugin> = config
            .plugins
            .values()
            .filter_map(|p| match p {
                RenderedPlugin::Tag(t) => Some(t.clone()),
                RenderedPlugin::WeChatMpLogin(_) => None,
            })
            .collect();
        let (mut routes, mut tag_routes) = (Vec::new(), Vec::new());
        for route in &config.routes {
            let position = match route.plugin_type {
                PluginType::WeChatMpLogin => plugins.iter().position(|p| p.id == route.plugin),
                PluginType::Tag => tag_ids.iter().position(|id| **id == route.plugin),
            };
            let plugin = position.ok_or_else(|| {
                CompileError::UnknownPlugin(route.binding.clone(), route.plugin.clone())
            })?;
            let target = if route.plugin_type == PluginType::Tag {
                &mut tag_routes
            } else {
                &mut routes
            };
            target.push(Route {
                api: route.api.clone(),
                plugin,
            });
        }
        Ok(Self {
            version: format!("{}.{}", config.version, secret.version),
            routes,
            plugins,
            tag_routes,
            tag_plugins,
            identity,
        })
    }

    /// The login plugin bound to a request, if any: the first route in precedence order.
    pub fn login_plugin(&self, path: &str, method: &http::Method) -> Option<&LoginPlugin> {
        first(&self.routes, path, method).map(|r| &self.plugins[r.plugin])
    }

    /// The Tag plugin bound to a request, if any, with the API that matched.
    pub fn tag_plugin(
        &self,
        path: &str,
        method: &http::Method,
    ) -> Option<(&TagPlugin, Option<&wxgate_crds::render::contract::ApiMatch>)> {
        first(&self.tag_routes, path, method).map(|r| (&self.tag_plugins[r.plugin], r.api.as_ref()))
    }

    /// Whether a parameter name is an identity parameter (any case, `_` for `-`), or one in
    /// wxgate's own `x-wxgate-` namespace.
    pub fn is_identity(&self, name: &str) -> bool {
        is_reserved(name) || self.identity.iter().any(|n| same_param(n, name))
    }
}

/// The first route (in precedence order) matching a request.
fn first<'a>(routes: &'a [Route], path: &str, method: &http::Method) -> Option<&'a Route> {
    routes.iter().find(|r| {
        r.api
            .as_ref()
            .is_none_or(|api| routing::api_matches(api, path, method))
    })
}

/// Names in wxgate's namespace, which only the sidecar may set: `x-wxgate-` matched like
/// identity names (any letter case, `_` for `-`), so `x_wxgate_tag_openid`, which CGI-style
/// stacks merge with the real header, is wxgate's too.
pub fn is_reserved(name: &str) -> bool {
    name.len() > 9 && has_param_prefix(name, "x-wxgate-")
}

/// Identity headers stripped even before any config exists.
pub fn is_default_identity(name: &str) -> bool {
    is_reserved(name) || IDENTITY_HEADERS.iter().any(|h| same_param(h, name))
}

/// The handle the request path reads: one atomic load, no lock.
#[derive(Default)]
pub struct ActiveConfig(ArcSwapOption<Active>);

impl ActiveConfig {
    pub fn load(&self) -> Option<Arc<Active>> {
        self.0.load_full()
    }

    pub fn store(&self, active: Active) {
        self.0.store(Some(Arc::new(active)));
    }

    pub fn is_ready(&self) -> bool {
        self.0.load().is_some()
    }

    pub fn version(&self) -> Option<String> {
        self.0.load().as_ref().map(|a| a.version.clone())
    }
}

#[cfg(test)]
mod contract {
    //! The pinned operator→sidecar contract (crds/tests/contract.rs writes and checks the
    //! files): this sidecar must read those documents and act on every part of them.

    use wxgate_crds::render::{RenderedConfig, RenderedSecret};

    use super::*;

    fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crds/tests/contract")
            .join(name);
        let text = std::fs::read_to_string(&path).expect("the pinned contract");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_pinned_contract_compiles_and_routes_as_rendered() {
        let config: RenderedConfig = read("config.json");
        let secret: RenderedSecret = read("secret.json");
        let active = Active::compile(&config, &secret).expect("compiles");
        assert_eq!(
            active.version,
            format!("{}.{}", config.version, secret.version)
        );
        let login = active
            .login_plugin("/orders/7", &http::Method::GET)
            .expect("the Prefix route");
        assert_eq!(login.apps[0].app_id, "wx0123456789abcdef");
        assert!(login.is_login_path("/api/login"));
        assert!(
            active.login_plugin("/login", &http::Method::GET).is_none(),
            "the Exact route is POST only"
        );
        assert!(
            active
                .login_plugin("/users/7", &http::Method::PUT)
                .is_some()
        );
        let (tags, api) = active
            .tag_plugin("/users/7", &http::Method::GET)
            .expect("the Template route");
        assert_eq!(tags.rules.len(), 4);
        assert_eq!(api.map(|a| a.path.as_str()), Some("/users/{id}"));
        assert!(
            active.is_identity("X-WX-IDENTITY"),
            "the json identity name is stripped"
        );
    }
}
