//! Prometheus metrics, served on the admin port. Labels hold only fixed words, error codes,
//! errcodes and configured AppIDs: never an openid, a code, a credential or a secret.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;

mod sorted;

type Labels = Vec<(&'static str, String)>;
/// Series listed in label order on every scrape.
type Family<M> = sorted::Sorted<Labels, M>;

const VERIFICATION_OUTCOMES: [&str; 4] = ["ok", "missing", "invalid", "expired"];

fn request_labels(route: RouteKind, error: Option<&'static str>) -> Labels {
    let outcome = if error.is_some() {
        "answered"
    } else {
        "forwarded"
    };
    vec![
        ("route", route.as_str().to_owned()),
        ("outcome", outcome.to_owned()),
        ("code", error.unwrap_or_default().to_owned()),
    ]
}

/// Every metric of the sidecar.
pub struct Metrics {
    registry: Registry,
    requests: Family<Counter>,
    /// `requests` children, indexed by route and code, each made the first time it is counted
    /// (so `/metrics` shows only series that happened, never impossible pairs), then only an
    /// atomic increment on the request path.
    request_counters: Vec<OnceLock<Counter>>,
    verification_counters: [Counter; 4],
    code2session_calls: Family<Counter>,
    code2session_duration: Histogram,
    code2session_shed: Counter,
    wechat_api_calls: Family<Counter>,
    token_forced: Family<Counter>,
    token_force_budget: Family<Gauge>,
    verifications: Family<Counter>,
    referer_mismatches: Counter,
    reloads: Family<Counter>,
    config_info: Family<Gauge>,
}

/// How a request was handled, for `wxgate_requests_total{route}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// Not covered by any binding: passed through after hygiene.
    Unbound,
    /// A login request.
    Login,
    /// A bound request whose credential was checked.
    Verify,
    /// Refused before routing (no config, malformed request).
    None,
}

impl RouteKind {
    pub const ALL: [RouteKind; 4] = [
        RouteKind::Unbound,
        RouteKind::Login,
        RouteKind::Verify,
        RouteKind::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Unbound => "unbound",
            RouteKind::Login => "login",
            RouteKind::Verify => "verify",
            RouteKind::None => "none",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wxgate");
        let requests = Family::<Counter>::default();
        registry.register(
            "requests",
            "Requests by route kind, outcome (forwarded, or answered by wxgate) and error code",
            requests.clone(),
        );
        let code2session_calls = Family::<Counter>::default();
        registry.register(
            "code2session_calls",
            "code2Session calls by errcode (0 = success; timeout, unreachable, unreadable)",
            code2session_calls.clone(),
        );
        let code2session_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "code2session_duration_seconds",
            "Duration of code2Session calls",
            code2session_duration.clone(),
        );
        let code2session_shed = Counter::default();
        registry.register(
            "code2session_shed",
            "Logins refused at once, without calling WeChat: the limit of code2Session calls in flight was reached, or the circuit breaker was open",
            code2session_shed.clone(),
        );
        let wechat_api_calls = Family::<Counter>::default();
        registry.register(
            "wechat_api_calls",
            "Calls to WeChat's other server APIs by API (stable_token, getuserphonenumber, or the open-API path) and errcode (0 = success; timeout, unreachable, unreadable)",
            wechat_api_calls.clone(),
        );
        let token_forced = Family::<Counter>::default();
        registry.register(
            "access_token_forced_refreshes",
            "Forced access_token refreshes after WeChat rejected a token, by result (ok, error, refused: 30 s apart or the daily budget spent)",
            token_forced.clone(),
        );
        let token_force_budget = Family::<Gauge>::default();
        registry.register(
            "access_token_force_budget",
            "Forced access_token refreshes this sidecar may still make in the last 24 hours, by AppID",
            token_force_budget.clone(),
        );
        let verifications = Family::<Counter>::default();
        registry.register(
            "credential_verifications",
            "Credential verifications by outcome (ok, missing, invalid, expired)",
            verifications.clone(),
        );
        let referer_mismatches = Counter::default();
        registry.register(
            "referer_appid_mismatches",
            "Verified requests whose mini program Referer names another AppID than their credential's (the credential's wins; a Referer is only a hint)",
            referer_mismatches.clone(),
        );
        let reloads = Family::<Counter>::default();
        registry.register(
            "config_reloads",
            "Config loads by result (ok, error)",
            reloads.clone(),
        );
        let config_info = Family::<Gauge>::default();
        registry.register(
            "config_info",
            "The config in effect (1), by version",
            config_info.clone(),
        );
        let request_counters = (0..RouteKind::ALL.len() * (ErrorCode::ALL.len() + 1))
            .map(|_| OnceLock::new())
            .collect();
        let verification_counters = VERIFICATION_OUTCOMES.map(|o| {
            verifications
                .get_or_create(&vec![("outcome", o.to_owned())])
                .clone()
        });
        Self {
            registry,
            requests,
            request_counters,
            verification_counters,
            code2session_calls,
            code2session_duration,
            code2session_shed,
            wechat_api_calls,
            token_forced,
            token_force_budget,
            verifications,
            referer_mismatches,
            reloads,
            config_info,
        }
    }
}

impl Metrics {
    pub fn request(&self, route: RouteKind, error: Option<ErrorCode>) {
        let r = RouteKind::ALL
            .iter()
            .position(|k| *k == route)
            .unwrap_or_default();
        let c = error
            .and_then(|e| ErrorCode::ALL.iter().position(|x| *x == e))
            .map_or(0, |i| i + 1);
        let labels = || request_labels(route, error.map(ErrorCode::as_str));
        match self
            .request_counters
            .get(r * (ErrorCode::ALL.len() + 1) + c)
        {
            Some(slot) => {
                slot.get_or_init(|| self.requests.get_or_create(&labels()).clone())
                    .inc();
            }
            None => {
                self.requests.get_or_create(&labels()).inc();
            }
        }
    }

    pub fn code2session_call(&self, errcode: &str, took: Duration) {
        self.code2session_calls
            .get_or_create(&vec![("errcode", errcode.to_owned())])
            .inc();
        self.code2session_duration.observe(took.as_secs_f64());
    }

    pub fn code2session_shed(&self) {
        self.code2session_shed.inc();
    }

    /// A call to a WeChat API other than code2Session; `errcode` as [`crate::wechat::Failure::label`].
    pub fn wechat_api_call(&self, api: &str, errcode: &str) {
        self.wechat_api_calls
            .get_or_create(&vec![
                ("api", api.to_owned()),
                ("errcode", errcode.to_owned()),
            ])
            .inc();
    }

    /// `result`: `ok`, `error` or `refused`.
    pub fn token_forced(&self, result: &'static str) {
        self.token_forced
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    pub fn token_force_budget(&self, app_id: &str, left: usize) {
        self.token_force_budget
            .get_or_create(&vec![("appid", app_id.to_owned())])
            .set(i64::try_from(left).unwrap_or(i64::MAX));
    }

    /// `outcome`: one of `ok`, `missing`, `invalid`, `expired`.
    pub fn verification(&self, outcome: &'static str) {
        match VERIFICATION_OUTCOMES.iter().position(|o| *o == outcome) {
            Some(i) => {
                self.verification_counters[i].inc();
            }
            None => {
                let labels = vec![("outcome", outcome.to_owned())];
                self.verifications.get_or_create(&labels).inc();
            }
        }
    }

    pub fn referer_mismatch(&self) {
        self.referer_mismatches.inc();
    }

    pub fn reload(&self, ok: bool, version: Option<&str>) {
        let result = if ok { "ok" } else { "error" };
        self.reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
        if let Some(version) = version {
            self.config_info.clear();
            self.config_info
                .get_or_create(&vec![("version", version.to_owned())])
                .set(1);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_series(m: &Metrics) -> Vec<String> {
        m.render()
            .lines()
            .filter(|l| l.starts_with("wxgate_requests_total{"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn request_series_appear_only_once_counted_in_label_order() {
        let m = Metrics::default();
        assert_eq!(request_series(&m), Vec::<String>::new());
        m.request(RouteKind::Verify, Some(ErrorCode::LoginInvalid));
        m.request(RouteKind::Verify, Some(ErrorCode::LoginInvalid));
        m.request(RouteKind::Login, None);
        let series = request_series(&m);
        assert_eq!(
            series,
            [
                "wxgate_requests_total{route=\"login\",outcome=\"forwarded\",code=\"\"} 1",
                "wxgate_requests_total{route=\"verify\",outcome=\"answered\",code=\"LOGIN_INVALID\"} 2",
            ]
        );
    }

    #[test]
    fn series_are_listed_in_label_order_whatever_order_they_came_in() {
        let m = Metrics::default();
        let errcodes = [
            "timeout",
            "40163",
            "0",
            "45011",
            "-1",
            "40029",
            "unreachable",
        ];
        for e in errcodes {
            m.code2session_call(e, Duration::from_millis(1));
        }
        let listed: Vec<String> = m
            .render()
            .lines()
            .filter_map(|l| l.strip_prefix("wxgate_code2session_calls_total{errcode=\""))
            .map(|l| l.split('"').next().unwrap_or_default().to_owned())
            .collect();
        let mut sorted = errcodes.map(str::to_owned).to_vec();
        sorted.sort();
        assert_eq!(listed, sorted);
    }
}
