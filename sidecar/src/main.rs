//! `wxgate-sidecar`: see `wxgate-sidecar --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use wxgate_sidecar::args::{Args, LogFormat};

fn main() -> ExitCode {
    let args = Args::parse();
    // The access log follows --access-log, whatever level --log sets for the rest.
    let directives = if args.access_log {
        format!("{},wxgate::access=info", args.log)
    } else {
        args.log.clone()
    };
    // `target=level` pairs and a bare default level: read without compiling a regex, so the
    // regex engine's code is never paged in.
    let filter: Targets = directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    // Lines are written by a thread of their own, as many per write as have queued up: under
    // load the access log costs a system call per batch, not per request. Nothing is dropped
    // (a full queue makes the request wait), and what is queued is written before exit. The
    // queue is written in full when it is made (32 bytes a line): 8192 lines (256 KiB) for an
    // access log's bursts, 256 when only events are logged.
    let queued_lines = if args.access_log { 8192 } else { 256 };
    let (writer, _flushed_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(queued_lines)
        .thread_name("wxgate-log")
        .finish(std::io::BufWriter::new(std::io::stdout()));
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .finish()
            .with(filter)
            .init(),
        // Colours only for a terminal, never in a file or a log collector.
        LogFormat::Text => tracing_subscriber::fmt()
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(writer)
            .finish()
            .with(filter)
            .init(),
    }
    let runtime = if args.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.worker_threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wxgate-sidecar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match wxgate_sidecar::run::start(args).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(64);
            }
        };
        shutdown_signal().await;
        tracing::info!("shutting down: draining open requests");
        running.stop().await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
