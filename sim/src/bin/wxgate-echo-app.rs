//! `wxgate-echo-app`: a tiny app that answers with what it received, to show what the sidecar
//! hands an app.

use std::net::SocketAddr;

use clap::Parser;

/// Echo app: every answer is JSON describing the request it received.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Echo X-WX-SESSION-KEY only as its length, as a real app would never send it back.
    #[arg(long)]
    redact_session_key: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = if args.redact_session_key {
        wxgate_sim::app::EchoApp::redacting()
    } else {
        wxgate_sim::app::EchoApp::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("echo app on http://{}", listener.local_addr()?);
    wxgate_sim::serve_until_stopped(listener, app.router()).await?;
    Ok(())
}
