//! The HTTP client for WeChat's servers, built the first time a call needs it.

use std::sync::OnceLock;

use super::Failure;

/// Builds the client: TLS verified, no redirects (see [`super::WeChat::new`]).
type Build = Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// reqwest's client, built on first use and then shared. Building it loads the TLS stack and
/// the system's CA certificates, about 1.1 MiB of idle RSS (measured, BENCHMARKS.md): a sidecar
/// that only verifies credentials, or has not yet seen a login, never pays it.
pub struct LazyClient {
    client: OnceLock<reqwest::Client>,
    build: Build,
}

impl LazyClient {
    pub fn new(
        build: impl Fn() -> reqwest::Result<reqwest::Client> + Send + Sync + 'static,
    ) -> Self {
        Self {
            client: OnceLock::new(),
            build: Box::new(build),
        }
    }

    /// The client, built now if this is the first call. A client that cannot be built (no TLS
    /// backend, no CA certificates) is `Unreachable`, logged (a build error names no URL, so no
    /// secret) and tried again on the next call.
    pub fn get(&self) -> Result<&reqwest::Client, Failure> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        match (self.build)() {
            Ok(client) => Ok(self.client.get_or_init(|| client)),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client for WeChat's servers");
                Err(Failure::Unreachable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn is_built_once_on_first_use_and_a_failed_build_is_tried_again() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&builds);
        let lazy = LazyClient::new(move || {
            // The first build fails (a User-Agent that is no header value), the next ones work.
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                reqwest::Client::builder().user_agent("\n").build()
            } else {
                reqwest::Client::builder().build()
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing built before use");
        assert!(matches!(lazy.get(), Err(Failure::Unreachable)));
        let first = lazy.get().expect("built on the second try") as *const reqwest::Client;
        let again = lazy.get().expect("kept") as *const reqwest::Client;
        assert_eq!(first, again, "one client, shared");
        assert_eq!(builds.load(Ordering::SeqCst), 2);
    }
}
