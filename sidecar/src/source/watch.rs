//! Change notifications for a folder (inotify), coalesced: a burst of events (an editor's
//! save, the kubelet's `..data` swap) becomes one reload.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Time to let a burst of file events settle before reloading.
const SETTLE: Duration = Duration::from_millis(25);

/// Watches `dir`; the receiver yields once per settled burst of changes. Keep the watcher
/// alive as long as the receiver is used.
pub fn folder(dir: &Path) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// Waits for the next burst of changes; `false` when the watcher is gone.
pub async fn next(rx: &mut mpsc::Receiver<()>) -> bool {
    if rx.recv().await.is_none() {
        return false;
    }
    tokio::time::sleep(SETTLE).await;
    while rx.try_recv().is_ok() {}
    true
}
