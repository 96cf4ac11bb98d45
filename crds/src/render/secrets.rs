//! Reading what a login plugin needs from Secrets: the AppID and APPSECRET from
//! `credentialsSecretRef`, the key ring from `<plugin>-credential-keys`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::keys::{KeyRing, key_ring_secret_name};
use crate::plugin::WeChatMpLogin;
use crate::problem::Reason;
use crate::render::config::{AppCredentials, PluginSecret};
use crate::secret::SecretString;

/// The data of a Secret as the API server would store it: `data`, overlaid by `stringData`
/// (which a manifest may use and the API server merges the same way).
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// A problem found while resolving a plugin's Secrets: (reason, field, message).
pub(crate) type SecretProblem = (Reason, &'static str, String);

/// Resolves a login plugin's secret material, or says exactly what is missing.
pub(crate) fn resolve(
    namespace: &str,
    plugin_name: &str,
    login: &WeChatMpLogin,
    secrets: &[Secret],
) -> Result<PluginSecret, Vec<SecretProblem>> {
    let find = |name: &str| {
        secrets.iter().find(|s| {
            crate::namespace_of(&s.metadata) == namespace && crate::name_of(&s.metadata) == name
        })
    };
    let mut problems = Vec::new();
    let field = if login.credentials_secret_ref.is_some() {
        "spec.wechatMpLogin.credentialsSecretRef"
    } else {
        "spec.wechatMpLogin.apps"
    };
    let mut apps = Vec::new();
    for app in login.mini_programs() {
        let r = &app.credentials_secret_ref;
        let Some(secret) = find(&r.name) else {
            problems.push((
                Reason::SecretNotFound,
                field,
                format!("Secret {namespace}/{} not found", r.name),
            ));
            continue;
        };
        let data = secret_data(secret);
        let text = |key: &str| {
            let value = data.get(key)?;
            let s = std::str::from_utf8(value).ok()?.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
        };
        let app_id = match app.app_id {
            Some(id) => Some(id),
            None => match text(&r.app_id_key) {
                Some(id) if login.platform.is_app_id(&id) => Some(id),
                Some(_) => {
                    problems.push((
                        Reason::SecretKeyInvalid,
                        field,
                        format!(
                            "entry {:?} of Secret {namespace}/{} is not an AppID ({})",
                            r.app_id_key,
                            r.name,
                            login.platform.app_id_shape()
                        ),
                    ));
                    None
                }
                None => {
                    problems.push((
                        Reason::SecretKeyInvalid,
                        field,
                        format!(
                            "Secret {namespace}/{} has no usable entry {:?} for the AppID (or set appId)",
                            r.name, r.app_id_key
                        ),
                    ));
                    None
                }
            },
        };
        let app_secret = text(&r.app_secret_key).map(SecretString::new);
        if app_secret.is_none() {
            problems.push((
                Reason::SecretKeyInvalid,
                field,
                format!(
                    "Secret {namespace}/{} has no usable entry {:?} for the APPSECRET",
                    r.name, r.app_secret_key
                ),
            ));
        }
        if let Some(id) = &app_id
            && apps.iter().any(|a: &AppCredentials| &a.app_id == id)
        {
            problems.push((
                Reason::SecretKeyInvalid,
                field,
                format!("AppID {id} is listed twice"),
            ));
        }
        if let (Some(app_id), Some(app_secret)) = (app_id, app_secret) {
            apps.push(AppCredentials { app_id, app_secret });
        }
    }

    let ring_name = key_ring_secret_name(plugin_name);
    const KEYS: &str = "metadata.name";
    let keys = match find(&ring_name) {
        None => {
            problems.push((
                Reason::CredentialKeysNotFound,
                KEYS,
                format!("credential key Secret {namespace}/{ring_name} not found"),
            ));
            None
        }
        Some(secret) => match KeyRing::from_secret_data(&secret_data(secret)) {
            Ok(ring) => Some(ring),
            Err(errors) => {
                problems.extend(errors.into_iter().map(|e| {
                    (
                        Reason::CredentialKeysInvalid,
                        KEYS,
                        format!("credential key Secret {namespace}/{ring_name}: {e}"),
                    )
                }));
                None
            }
        },
    };

    let mut apps = apps.into_iter();
    match (apps.next(), keys) {
        (Some(first), Some(keys)) if problems.is_empty() => Ok(PluginSecret {
            app_id: first.app_id,
            app_secret: first.app_secret,
            more_apps: apps.collect(),
            keys,
        }),
        _ => Err(problems),
    }
}
