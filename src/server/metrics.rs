//! `serve`'s Prometheus metrics, on an address of their own (`[server]
//! metrics_bind`, loopback by default), so the site's visitors never see
//! them: what this process answered (requests by route and status and how
//! long they took, sign-ups by outcome, confirmations, unsubscribes) as
//! counters, and what the shared database holds (the subscription email
//! queue by state, each cadence's last digest) read at each scrape.
//!
//! Owns the metrics' names, labels and exposition (OpenMetrics text). It
//! decides nothing: the handlers say what happened. Every label comes from
//! a fixed set (routes, outcomes, states, the config's cadences), never
//! from a request, so no client can grow the number of series.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::App;
use crate::config::DigestConfig;
use crate::store::{DigestRecord, Store, StoreError};

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

/// How a sign-up form ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpOutcome {
    /// Queued: a confirmation (or a manage link) is owed.
    Accepted,
    /// Posted by another site (CSRF).
    CrossSite,
    /// The client's sign-ups in the window are used up.
    RateLimited,
    /// An address or choice that is not valid.
    Invalid,
    /// The honeypot field was filled: a robot; nothing was recorded.
    Honeypot,
    /// The database could not take it (busy, down).
    Failed,
}

impl SignUpOutcome {
    fn label(self) -> &'static str {
        match self {
            SignUpOutcome::Accepted => "accepted",
            SignUpOutcome::CrossSite => "cross_site",
            SignUpOutcome::RateLimited => "rate_limited",
            SignUpOutcome::Invalid => "invalid",
            SignUpOutcome::Honeypot => "honeypot",
            SignUpOutcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CadenceLabels {
    cadence: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CadenceStateLabels {
    cadence: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CadenceEventLabels {
    cadence: String,
    kind: &'static str,
}

/// What the database holds, set at each scrape.
#[derive(Default)]
struct FromDatabase {
    up: Gauge,
    queue: Family<StateLabels, Gauge>,
    digest_number: Family<CadenceLabels, Gauge>,
    digest_slot: Family<CadenceLabels, Gauge>,
    digest_completed: Family<CadenceLabels, Gauge>,
    digest_messages: Family<CadenceStateLabels, Gauge>,
    digest_events: Family<CadenceEventLabels, Gauge>,
}

/// Every metric `serve` exposes.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    sign_ups: Family<OutcomeLabels, Counter>,
    confirmations: Counter,
    unsubscribes: Counter,
    database: FromDatabase,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("shorts");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        // 0.5 ms to about 8 s: a file from memory to a store that waits.
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 4.0, 8))) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request (to its headers), by route",
            durations.clone(),
        );
        let sign_ups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sign_ups",
            "Sign-up forms posted, by outcome",
            sign_ups.clone(),
        );
        let confirmations = Counter::default();
        registry.register(
            "confirmations",
            "Sign-ups confirmed (pending to active)",
            confirmations.clone(),
        );
        let unsubscribes = Counter::default();
        registry.register(
            "unsubscribes",
            "Subscribers who unsubscribed by link or one-click",
            unsubscribes.clone(),
        );
        let database = FromDatabase::default();
        database.register(&mut registry);
        Metrics {
            registry,
            requests,
            durations,
            sign_ups,
            confirmations,
            unsubscribes,
            database,
        }
    }

    /// A request to `path` answered with `status` after `seconds`.
    pub fn answered(&self, path: &str, status: StatusCode, seconds: f64) {
        let route = route_of(path);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                status: status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    pub fn signed_up(&self, outcome: SignUpOutcome) {
        self.sign_ups
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub fn confirmed(&self) {
        self.confirmations.inc();
    }

    pub fn unsubscribed(&self) {
        self.unsubscribes.inc();
    }

    /// The exposition: the database read now, then everything encoded.
    fn render(&self, store: &dyn Store, digest: Option<&DigestConfig>) -> String {
        let read = self.database.read(store, digest);
        if let Err(e) = &read {
            tracing::warn!(error = %e, "metrics: cannot read the database");
        }
        self.database.up.set(i64::from(read.is_ok()));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics: cannot encode");
        }
        text
    }
}

impl FromDatabase {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "database_up",
            "1 when the last scrape could read the database",
            self.up.clone(),
        );
        registry.register(
            "mail_queue",
            "Subscription emails (confirmations, welcomes) in the shared queue, by state",
            self.queue.clone(),
        );
        registry.register(
            "last_digest_number",
            "The number of each cadence's latest digest",
            self.digest_number.clone(),
        );
        registry.register(
            "last_digest_slot_timestamp_seconds",
            "When each cadence's latest digest was due (its slot), in Unix time",
            self.digest_slot.clone(),
        );
        registry.register(
            "last_digest_completed",
            "1 once each cadence's latest digest has reached every reader",
            self.digest_completed.clone(),
        );
        registry.register(
            "last_digest_messages",
            "Each cadence's latest digest's deliveries, by state",
            self.digest_messages.clone(),
        );
        registry.register(
            "last_digest_events",
            "What came back about each cadence's latest digest, by kind",
            self.digest_events.clone(),
        );
    }

    fn read(&self, store: &dyn Store, digest: Option<&DigestConfig>) -> Result<(), StoreError> {
        let queue = store.mail_queue_counts()?;
        for (state, n) in [
            ("queued", queue.queued),
            ("sending", queue.sending),
            ("sent", queue.sent),
            ("dropped", queue.dropped),
            ("failed", queue.failed),
        ] {
            self.queue
                .get_or_create(&StateLabels { state })
                .set(gauge(n));
        }
        for cadence in digest.iter().flat_map(|digest| &digest.cadences) {
            if let Some(digest) = store.latest_digest(&cadence.key)? {
                self.read_digest(store, &cadence.name, &digest)?;
            }
        }
        Ok(())
    }

    fn read_digest(
        &self,
        store: &dyn Store,
        cadence: &str,
        digest: &DigestRecord,
    ) -> Result<(), StoreError> {
        let counts = store.digest_counts(digest.number)?;
        let labels = CadenceLabels {
            cadence: cadence.to_string(),
        };
        self.digest_number.get_or_create(&labels).set(digest.number);
        self.digest_slot
            .get_or_create(&labels)
            .set(digest.slot.timestamp());
        self.digest_completed
            .get_or_create(&labels)
            .set(i64::from(digest.completed));
        for (state, n) in [
            ("sent", counts.sent),
            ("sending", counts.sending),
            ("deferred", counts.deferred),
            ("failed", counts.failed),
            ("skipped", counts.skipped),
        ] {
            let labels = CadenceStateLabels {
                cadence: cadence.to_string(),
                state,
            };
            self.digest_messages.get_or_create(&labels).set(gauge(n));
        }
        for (kind, n) in [
            ("hard_bounce", counts.hard_bounces),
            ("soft_bounce", counts.soft_bounces),
            ("complaint", counts.complaints),
            ("unsubscribe", counts.unsubscribes),
        ] {
            let labels = CadenceEventLabels {
                cadence: cadence.to_string(),
                kind,
            };
            self.digest_events.get_or_create(&labels).set(gauge(n));
        }
        Ok(())
    }
}

fn gauge(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The route a path is counted under: one of the endpoints, or `static`
/// for everything else (files, redirects, 404s), whatever the path.
fn route_of(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    super::ROUTES
        .into_iter()
        .find(|route| *route == path)
        .unwrap_or("static")
}

/// The metrics listener's router: `GET /metrics`, nothing else.
pub fn router(app: Arc<App>) -> Router {
    Router::new().route(PATH, get(scrape)).with_state(app)
}

async fn scrape(State(app): State<Arc<App>>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        let store = app.store();
        app.metrics
            .render(store.as_ref(), app.config.digest.as_ref())
    })
    .await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: the scrape failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_outside_the_endpoints_is_one_route() {
        assert_eq!(route_of("/subscribe"), "subscribe");
        assert_eq!(route_of("/confirm"), "confirm");
        assert_eq!(route_of("/webhooks/ses"), "webhooks/ses");
        for path in ["/", "/shorts/kv-cache/", "/rss.xml", "/subscribe/x", "/%00"] {
            assert_eq!(route_of(path), "static", "{path}");
        }
    }

    #[test]
    fn the_exposition_has_the_counters_and_what_the_database_holds() {
        let metrics = Metrics::new();
        metrics.answered("/subscribe", StatusCode::OK, 0.002);
        metrics.answered("/no/such/page", StatusCode::NOT_FOUND, 0.0001);
        metrics.signed_up(SignUpOutcome::RateLimited);
        metrics.confirmed();
        let store = crate::store::Database::in_memory().unwrap();
        let text = metrics.render(&store, None);
        for line in [
            "shorts_http_requests_total{route=\"subscribe\",status=\"200\"} 1",
            "shorts_http_requests_total{route=\"static\",status=\"404\"} 1",
            "shorts_sign_ups_total{outcome=\"rate_limited\"} 1",
            "shorts_confirmations_total 1",
            "shorts_unsubscribes_total 0",
            "shorts_database_up 1",
            "shorts_mail_queue{state=\"queued\"} 0",
            "shorts_http_request_duration_seconds_count{route=\"subscribe\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
