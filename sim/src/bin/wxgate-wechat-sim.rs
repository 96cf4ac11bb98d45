//! `wxgate-wechat-sim`: a WeChat code2Session **simulator** for tests and the quickstart.
//! Never point a production sidecar at it.

use std::collections::HashMap;
use std::net::SocketAddr;

use clap::Parser;

/// WeChat code2Session simulator (see the wxgate-sim crate docs for the scripted codes).
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: SocketAddr,
    /// Enforce an APPID:SECRET pair (repeatable); without any, every non-empty pair is accepted.
    #[arg(long = "app")]
    apps: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut apps = HashMap::new();
    for pair in &args.apps {
        let (id, secret) = pair
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--app wants APPID:SECRET"))?;
        apps.insert(id.to_owned(), secret.to_owned());
    }
    let sim = wxgate_sim::wechat::Simulator::new(apps);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "WeChat simulator (not WeChat) on http://{}",
        listener.local_addr()?
    );
    wxgate_sim::serve_until_stopped(listener, sim.router()).await?;
    Ok(())
}
