//! The connections of `shorts serve`: accepting them, capping how many are
//! open, closing those that send their headers too slowly, and stopping
//! within a deadline.
//!
//! axum's own `serve` sets no header-read timer and no cap, so a few hundred
//! slow clients (slowloris) keep a small server's descriptors until they
//! leave, and a graceful shutdown waits for every half-sent request. This
//! module drives hyper directly with those limits. It knows nothing of
//! routes: it hands each request to the site's service with the peer's
//! address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// What bounds the connections, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's whole header within this long.
    pub header_timeout: Duration,
    /// At most this many connections are open; more are closed at once.
    pub max_connections: usize,
    /// On SIGTERM, requests in progress get this long to finish.
    pub shutdown_timeout: Duration,
}

impl Limits {
    pub fn of(server: &crate::config::ServerConfig) -> Self {
        Limits {
            header_timeout: Duration::from_secs(server.header_timeout_secs.max(1)),
            max_connections: server.max_connections.max(1),
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_secs),
        }
    }
}

/// What answers the requests: the router, or a service in front of it.
pub trait Site:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Site for S where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

/// Serves `site` on `listener` until `shutdown` resolves, then lets the
/// requests in progress finish for at most `limits.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    site: impl Site,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most often: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tracing::debug!(%peer, limit = limits.max_connections, "connection refused: too many open");
            drop(stream);
            continue;
        };
        let connection = connection(stream, peer, site.clone(), limits);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after = ?limits.shutdown_timeout,
            "requests still in progress at the shutdown deadline were cut off"
        );
    }
    Ok(())
}

/// One HTTP/1.1 connection, each request handed to `site` with the peer's
/// address (as `ConnectInfo`, which the handlers read).
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    site: impl Site,
    limits: Limits,
) -> hyper::server::conn::http1::Connection<
    TokioIo<TcpStream>,
    impl hyper::service::Service<
        hyper::Request<Incoming>,
        Response = axum::response::Response,
        Error = Infallible,
        Future = impl Send,
    > + Send,
> {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        site.clone().oneshot(request.map(axum::body::Body::new))
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
}
