//! The one way the operator, the sidecar and the tests reach the API server: a kubeconfig file
//! when given, else the in-cluster service account (or `KUBECONFIG` / `~/.kube/config`).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: KubeconfigError,
    },
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// A client from `kubeconfig` (its current context), or from the environment when `None`.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ClientError> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Client::try_default().await?);
    };
    let located = |source| ClientError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kc = Kubeconfig::read_from(path).map_err(located)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(located)?;
    Ok(kube::Client::try_from(config)?)
}
