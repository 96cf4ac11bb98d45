//! Route precedence and conflicts.
//!
//! When several bindings of one plugin type match a request, the most specific wins:
//! 1. an API binding over a whole-Service binding;
//! 2. `Exact` over `Template` over `Prefix`;
//! 3. a longer path over a shorter one;
//! 4. an API listing methods over one that takes every method;
//! 5. otherwise by path, then binding name (only to make the order stable).
//!
//! Two different plugins of one type on exactly the same route (same match, path with template
//! names ignored, and methods) are a conflict.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::render::config::Route;
use crate::render::contract::{ApiMatch, PathMatch, PluginType};

/// The sort key of a route: smaller sorts first and wins.
fn precedence(route: &Route) -> impl Ord + '_ {
    let api = route.api.as_ref();
    (
        api.is_none(),
        api.map(|a| a.match_type),
        Reverse(api.map_or(0, |a| a.path.len())),
        api.is_some_and(|a| a.methods.is_none()),
        api.map(|a| a.path.as_str()),
        route.binding.as_str(),
    )
}

/// Sorts routes by precedence (most specific first).
pub(crate) fn sort(routes: &mut [Route]) {
    routes.sort_by(|a, b| precedence(a).cmp(&precedence(b)));
}

/// What makes two routes the same route: plugin type, match, path with template parameter
/// names erased, and the method set.
fn identity(route: &Route) -> (PluginType, Option<ApiMatch>) {
    let api = route.api.as_ref().map(|a: &ApiMatch| {
        let path = match a.match_type {
            PathMatch::Template => a
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect::<Vec<_>>()
                .join("/"),
            _ => a.path.clone(),
        };
        ApiMatch { path, ..a.clone() }
    });
    (route.plugin_type, api)
}

/// Groups of routes that are the same route but bind different plugins: each group lists the
/// bindings involved and the plugins they bind.
pub(crate) fn conflicts(routes: &[Route]) -> Vec<Vec<&Route>> {
    let mut by_identity: BTreeMap<_, Vec<&Route>> = BTreeMap::new();
    for route in routes {
        by_identity.entry(identity(route)).or_default().push(route);
    }
    by_identity
        .into_values()
        .filter(|group| group.iter().any(|r| r.plugin != group[0].plugin))
        .collect()
}

/// Sorts and deduplicates the method list of an API, so equal sets compare equal.
pub(crate) fn normalize(mut api: ApiMatch) -> ApiMatch {
    if let Some(methods) = api.methods.as_mut() {
        methods.sort();
        methods.dedup();
    }
    api
}
