//! The AppID's access_token against the WeChat simulator over loopback HTTP: cached, fetched
//! once however many wait, refreshed ahead in the background, a rejected token replaced without
//! spending the force_refresh budget when WeChat has moved on, and the budget kept.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wxgate_crds::secret::SecretString;
use wxgate_sidecar::error::ErrorCode;
use wxgate_sidecar::metrics::Metrics;
use wxgate_sidecar::wechat::client::LazyClient;
use wxgate_sidecar::wechat::token::{AccessTokens, TokenConfig};
use wxgate_sim::wechat::Simulator;

const APP: &str = "wx0123456789abcdef";
const SECRET: &str = "s3cret";

struct Setup {
    sim: Simulator,
    tokens: Arc<AccessTokens>,
    metrics: Arc<Metrics>,
    base: String,
}

async fn setup(force_per_day: usize) -> Setup {
    let sim = Simulator::new(HashMap::from([(APP.to_owned(), SECRET.to_owned())]));
    let addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), sim.router())
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let base = format!("http://{addr}");
    let tokens = AccessTokens::new(
        Arc::new(LazyClient::new(|| Ok(reqwest::Client::new()))),
        &base,
        TokenConfig { force_per_day },
        Arc::clone(&metrics),
    );
    Setup {
        sim,
        tokens,
        metrics,
        base,
    }
}

fn secret() -> SecretString {
    SecretString::new(SECRET)
}

impl Setup {
    /// Moves both clocks: WeChat's and the sidecar's.
    fn advance(&self, by: Duration) {
        self.sim.advance(by);
        self.tokens.clock().advance(by);
    }

    /// A forced refresh by another caller of the AppID.
    async fn force_elsewhere(&self) {
        let body = serde_json::json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": true});
        let answer = reqwest::Client::new()
            .post(format!("{}/cgi-bin/stable_token", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.contains("access_token"), "{answer}");
    }

    fn metric(&self, prefix: &str) -> String {
        self.metrics
            .render()
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test]
async fn one_call_for_a_thousand_uses_and_for_twenty_waiting_at_once() {
    let s = setup(20).await;
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let tokens = Arc::clone(&s.tokens);
            tokio::spawn(async move { tokens.get(APP, &secret()).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for w in waiting {
        seen.push(w.await.unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    for _ in 0..1000 {
        assert_eq!(s.tokens.get(APP, &secret()).await.unwrap(), seen[0]);
    }
    assert_eq!(s.sim.stable_token_calls(), (1, 0));
    assert!(s.sim.token_is_valid(APP, seen[0].expose()));
    assert_eq!(
        s.metric("wxgate_wechat_api_calls_total{api=\"stable_token\",errcode=\"0\"}"),
        "wxgate_wechat_api_calls_total{api=\"stable_token\",errcode=\"0\"} 1"
    );
}

#[tokio::test]
async fn refreshed_in_the_background_in_its_last_five_minutes() {
    let s = setup(20).await;
    let first = s.tokens.get(APP, &secret()).await.unwrap();
    s.advance(Duration::from_secs(7200 - 250));
    assert_eq!(
        s.tokens.get(APP, &secret()).await.unwrap(),
        first,
        "the current token goes on while the refresh runs"
    );
    let mut renewed = first.clone();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        renewed = s.tokens.get(APP, &secret()).await.unwrap();
        if renewed != first {
            break;
        }
    }
    assert_ne!(
        renewed, first,
        "a new token is cached before the old one expires"
    );
    assert_eq!(s.sim.stable_token_calls(), (2, 0));
    s.advance(Duration::from_secs(300));
    assert!(!s.sim.token_is_valid(APP, first.expose()));
    assert_eq!(s.tokens.get(APP, &secret()).await.unwrap(), renewed);
    assert_eq!(s.sim.stable_token_calls(), (2, 0));
}

#[tokio::test]
async fn a_rejected_token_is_replaced_without_forcing_when_wechat_has_moved_on() {
    let s = setup(20).await;
    let ours = s.tokens.get(APP, &secret()).await.unwrap();
    s.force_elsewhere().await;
    assert!(!s.sim.token_is_valid(APP, ours.expose()));
    let storm: Vec<_> = (0..50)
        .map(|_| {
            let (tokens, ours) = (Arc::clone(&s.tokens), ours.clone());
            tokio::spawn(async move { tokens.rejected(APP, &secret(), &ours).await.unwrap() })
        })
        .collect();
    for t in storm {
        let next = t.await.unwrap();
        assert!(s.sim.token_is_valid(APP, next.expose()));
    }
    assert_eq!(
        s.sim.stable_token_calls(),
        (3, 1),
        "one normal call, and only the other caller forced"
    );
}

#[tokio::test]
async fn a_token_wechat_still_hands_out_is_forced_30_s_apart_within_the_budget() {
    let s = setup(2).await;
    let ours = s.tokens.get(APP, &secret()).await.unwrap();
    let storm: Vec<_> = (0..50)
        .map(|_| {
            let (tokens, ours) = (Arc::clone(&s.tokens), ours.clone());
            tokio::spawn(async move { tokens.rejected(APP, &secret(), &ours).await })
        })
        .collect();
    let mut forced = None;
    for t in storm {
        let next = t.await.unwrap().unwrap();
        assert_ne!(next, ours);
        assert!(
            forced.get_or_insert(next.clone()) == &next,
            "all share one forced token"
        );
    }
    let forced = forced.unwrap();
    assert_eq!(
        s.sim.stable_token_calls().1,
        1,
        "one forced refresh for the storm"
    );
    assert_eq!(
        s.tokens.rejected(APP, &secret(), &forced).await,
        Err(ErrorCode::WxTokenUnavailable),
        "within 30 s of the last forced refresh"
    );
    s.advance(Duration::from_secs(31));
    let again = s.tokens.rejected(APP, &secret(), &forced).await.unwrap();
    s.advance(Duration::from_secs(31));
    assert_eq!(
        s.tokens.rejected(APP, &secret(), &again).await,
        Err(ErrorCode::WxTokenUnavailable),
        "the daily budget (2 here) is spent"
    );
    assert_eq!(s.sim.stable_token_calls().1, 2);
    assert_eq!(
        s.metric("wxgate_access_token_force_budget{"),
        format!("wxgate_access_token_force_budget{{appid=\"{APP}\"}} 0")
    );
    assert!(
        s.metric("wxgate_access_token_forced_refreshes_total{result=\"refused\"}")
            .ends_with(" 2")
    );
    s.advance(Duration::from_secs(86_400));
    assert!(
        s.tokens.rejected(APP, &secret(), &again).await.is_ok(),
        "a new day"
    );
}

#[tokio::test]
async fn wechat_failures_are_shared_by_waiters_and_named() {
    let s = setup(20).await;
    let down = SecretString::new("errm1");
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let (tokens, down) = (Arc::clone(&s.tokens), down.clone());
            tokio::spawn(async move { tokens.get("wxffffffffffffff01", &down).await })
        })
        .collect();
    for w in waiting {
        assert_eq!(w.await.unwrap(), Err(ErrorCode::WxTokenUnavailable));
    }
    assert_eq!(
        s.sim.stable_token_calls().0,
        1,
        "one call while WeChat fails"
    );
    assert_eq!(
        s.tokens.get(APP, &SecretString::new("wrong")).await,
        Err(ErrorCode::WxConfigError)
    );
    assert_eq!(
        s.tokens
            .get("wxffffffffffffff02", &SecretString::new("err40164"))
            .await,
        Err(ErrorCode::WxConfigError),
        "IP not whitelisted"
    );
    let unreachable = AccessTokens::new(
        Arc::new(LazyClient::new(|| Ok(reqwest::Client::new()))),
        "http://127.0.0.1:9",
        TokenConfig { force_per_day: 20 },
        Arc::new(Metrics::default()),
    );
    assert_eq!(
        unreachable.get(APP, &secret()).await,
        Err(ErrorCode::WxTokenUnavailable)
    );
    let rendered = s.metrics.render();
    assert!(rendered.contains("errcode=\"-1\""), "{rendered}");
    assert!(!rendered.contains(SECRET) && !rendered.contains("sim"));
}
