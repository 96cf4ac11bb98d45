//! The wxgate sidecar: the HTTP proxy in each bound pod (DESIGN.md sections 1, 5, 6 and 9).
//!
//! A request goes through [`proxy`]: hygiene, routing ([`routing`]), then pass-through, login
//! ([`wechat`], [`credential`]) or verification. The config in effect ([`active`]) comes from a
//! [`source`] and is swapped atomically.

pub mod active;
pub mod admin;
pub mod args;
pub mod breaker;
pub mod credential;
pub mod error;
pub mod flights;
pub mod ids;
pub mod metrics;
pub mod open_api;
pub mod params;
pub mod profile;
pub mod proxy;
pub mod referer;
pub mod routing;
pub mod run;
pub mod source;
pub mod tags;
pub mod trace;
pub mod wechat;
