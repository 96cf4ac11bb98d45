//! Phone numbers on bound requests (`phone` of a login plugin): a phone code sent along a login
//! (`phone.onLogin`) or on `phone.paths` by a logged-in user is exchanged with WeChat for the
//! user's number, which the app receives with the identity; with `phone.keepInCredential` the
//! credential issued after the app's 2xx holds it, so later requests carry it too.

use wxgate_crds::render::contract::PhoneSpec;

use super::State;
use super::codes::Wanted;
use crate::active::{App, LoginPlugin};
use crate::error::ErrorCode;
use crate::routing;
use crate::wechat::phone::Phone;

/// Exchanges the phone code of the user `openid` of the mini program `app` (one paid call per
/// code, shared).
pub(super) async fn exchange(
    state: &State,
    plugin: &LoginPlugin,
    app: &App,
    openid: &str,
    code: &str,
) -> Result<Phone, ErrorCode> {
    state
        .wechat
        .phone_number(&plugin.id, &app.app_id, &app.app_secret, openid, code)
        .await
}

/// Whether the plugin keeps phone numbers in its credentials.
pub(super) fn kept(plugin: &LoginPlugin) -> bool {
    plugin
        .config
        .phone
        .as_ref()
        .is_some_and(|p| p.keep_in_credential)
}

/// The phone settings when a (normalized) path is one of `phone.paths`.
pub(super) fn on_path<'a>(plugin: &'a LoginPlugin, path: &str) -> Option<&'a PhoneSpec> {
    plugin
        .config
        .phone
        .as_ref()
        .filter(|p| p.paths.iter().any(|x| routing::same_path(x, path)))
}

/// The phone code wanted on a request.
pub(super) fn wanted(phone: &PhoneSpec, required: bool) -> Wanted<'_> {
    Wanted {
        param: &phone.code,
        required,
        error: ErrorCode::BadPhoneRequest,
    }
}
