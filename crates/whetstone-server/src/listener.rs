//! Accepting connections with limits that `axum::serve` does not have: a deadline for the
//! request head and a cap on open connections, so slow or idle clients cannot crowd out others.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub struct Limits {
    /// Time a client has to send a request's head; the handler applies the same to the body.
    pub read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, limits: &Limits, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    // The deadline also runs while a kept-alive connection waits for its next request, so idle
    // connections give their slot back too.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    tokio::pin!(shutdown);
    loop {
        // At the cap, new connections wait in the kernel's backlog until one closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            () = &mut shutdown => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to be released
                    // instead of spinning.
                    eprintln!("warning: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out, malformed); nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
}
