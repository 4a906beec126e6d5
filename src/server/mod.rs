//! `shorts serve`: `public/` over HTTP for feed readers, the endpoints
//! the digest links to: subscribe (double opt-in), confirm, one-click
//! unsubscribe (RFC 8058) and track preferences, and the relays' webhooks
//! ([`webhooks`]).
//!
//! Owns HTTP: routing, limits, the cross-site check, the per-client rate limit,
//! the sign-up form's honeypot and per-address cap on confirmation emails
//! (against list-bombing), and turning every bad input into a 4xx page. What a subscriber is and how
//! tokens are signed belong to `store` and `tokens`.

pub mod client;
pub mod encoding;
pub mod file_cache;
pub mod listen;
pub mod mailer;
pub mod metrics;
pub mod pages;
pub mod site_tags;
pub mod static_files;
pub mod webhooks;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::Config;
use crate::delivery::compose::Signer;
use crate::model::{Subscriber, SubscriberStatus};
use crate::paths;
use crate::render::subscription_mail::SubscriptionMail;
use crate::store::{Store, StoreError};
use crate::tokens::{Purpose, Secret};
use file_cache::Found;
use metrics::SignUpOutcome;
use pages::{Page, ServerPages};
use tower::ServiceExt as _;

/// Request bodies larger than this are refused with 413 (the webhooks
/// take up to [`webhooks::WEBHOOK_BODY`]).
pub const MAX_BODY: usize = 16 * 1024;
/// Sign-ups per client ([`client::limit_key`]) per window.
const SIGNUPS_PER_WINDOW: u32 = 5;
const SIGNUP_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// How long a client refused (429) is refused again without asking the
/// database: a client posting in a loop costs one write a minute, not one
/// a request. (Its window in the database may end a little sooner.)
const REFUSED_FOR: chrono::Duration = chrono::Duration::minutes(1);
/// The sign-up form's field that people never fill (it is hidden from
/// sight and says to leave it empty); form-filling robots do.
const HONEYPOT: &str = "website";

pub struct App {
    pub config: Config,
    pub store: Mutex<Box<dyn Store>>,
    pub secret: Secret,
    /// Signs confirmation emails as digests are signed, when `[delivery.dkim]` is set.
    pub signer: Option<Signer>,
    pub cache_control: header::HeaderValue,
    /// `[server] content_security_policy`, unless it is empty.
    content_security_policy: Option<header::HeaderValue>,
    pub clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    pub webhooks: webhooks::Webhooks,
    /// The pages it draws itself, from the site's templates.
    pages: ServerPages,
    /// The templates of the emails about a subscription; without them
    /// (no `[digest]`), nothing is sent.
    mail: Option<SubscriptionMail>,
    /// Wakes the [`mailer`] when a handler has queued an email.
    wake: tokio::sync::Notify,
    site_tags: site_tags::SiteTags,
    /// Clients over the sign-up limit, and until when this process
    /// refuses them without asking the database ([`REFUSED_FOR`]).
    refused: Mutex<HashMap<String, DateTime<Utc>>>,
    /// What the live generation of `public/` holds.
    files: file_cache::FileCache,
    metrics: metrics::Metrics,
}

impl App {
    pub fn new(
        config: Config,
        store: Box<dyn Store>,
        secret: Secret,
        signer: Option<Signer>,
        clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
        webhooks: webhooks::Webhooks,
        pages: ServerPages,
    ) -> Self {
        App {
            cache_control: header::HeaderValue::from_str(&config.server.cache_control)
                .unwrap_or(header::HeaderValue::from_static("no-cache")),
            files: file_cache::FileCache::of(&config.output_dir),
            content_security_policy: Some(&config.server.content_security_policy)
                .filter(|policy| !policy.is_empty())
                .and_then(|policy| header::HeaderValue::from_str(policy).ok()),
            config,
            store: Mutex::new(store),
            secret,
            signer,
            clock,
            webhooks,
            pages,
            mail: None,
            wake: tokio::sync::Notify::new(),
            site_tags: site_tags::SiteTags::default(),
            refused: Mutex::default(),
            metrics: metrics::Metrics::new(),
        }
    }

    /// Sends the emails about a subscription from these templates.
    pub fn with_subscription_mail(mut self, mail: SubscriptionMail) -> Self {
        self.mail = Some(mail);
        self
    }

    fn refused_until(&self, client: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        // A clock set back must not hold a client for the difference.
        refused
            .get(client)
            .copied()
            .filter(|until| *until <= now + REFUSED_FOR)
    }

    fn refuse(&self, client: String, now: DateTime<Utc>) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.retain(|_, until| *until > now);
        refused.insert(client, now + REFUSED_FOR);
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn Store>> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// True while `client` may sign up again. Counted in the database, so that
/// every `serve` sharing it (replicas behind one load balancer) counts the
/// client's sign-ups together, and a restart forgets nothing.
async fn allow_signup(app: &Arc<App>, client: IpAddr) -> Result<bool, Problem> {
    let key = client::limit_key(client);
    let now = (app.clock)();
    if app
        .refused_until(&key, now)
        .is_some_and(|until| now < until)
    {
        return Ok(false);
    }
    let began_by = now - SIGNUP_WINDOW;
    let counted = key.clone();
    let count = with_store(app, move |store| {
        store.count_sign_up(&counted, began_by, now)
    })
    .await?;
    let allowed = count <= SIGNUPS_PER_WINDOW;
    if !allowed {
        app.refuse(key, now);
    }
    Ok(allowed)
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(&paths::route(paths::SUBSCRIBE), post(subscribe))
        .route(
            &paths::route(paths::CONFIRM),
            get(confirm_page).post(confirm),
        )
        .route(
            &paths::route(paths::UNSUBSCRIBE),
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            &paths::route(paths::PREFERENCES),
            get(preferences_page).post(update_preferences),
        )
        .route(
            &paths::route(paths::WEBHOOK_POSTMARK),
            post(webhooks::postmark).layer(DefaultBodyLimit::max(webhooks::WEBHOOK_BODY)),
        )
        .route(
            &paths::route(paths::WEBHOOK_SES),
            post(webhooks::ses).layer(DefaultBodyLimit::max(webhooks::WEBHOOK_BODY)),
        )
        .fallback(static_file)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            draw_problem,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            security_headers,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // A request whose body never comes is answered 408, not held.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(app.config.server.request_timeout_secs.max(1)),
        ))
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .br(true),
        )
        .with_state(app)
}

/// The routes the router answers itself; a file of `public/` at one of
/// these paths is never served. (The metrics count requests by these.)
const ROUTES: [&str; 6] = [
    paths::SUBSCRIBE,
    paths::CONFIRM,
    paths::UNSUBSCRIBE,
    paths::PREFERENCES,
    paths::WEBHOOK_POSTMARK,
    paths::WEBHOOK_SES,
];

/// Every request `serve` answers: a static file that none of the router's
/// layers would change is answered at once, before them (most requests,
/// at a fraction of the cost); everything else goes through the router.
pub fn site(app: Arc<App>) -> impl listen::Site {
    let routes = router(Arc::clone(&app));
    tower::service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        let routes = routes.clone();
        async move {
            let started = Instant::now();
            // A URI's clone shares its bytes.
            let uri = request.uri().clone();
            let response = match plain_static_file(&app, &request) {
                Some(file) => {
                    let mut response =
                        static_files::serve_file(&file, request.headers(), &app.cache_control)
                            .await;
                    add_websub_links(&app, uri.path(), response.headers_mut());
                    add_security_headers(&app, false, response.headers_mut());
                    response
                }
                None => routes.oneshot(request).await?,
            };
            let seconds = started.elapsed().as_secs_f64();
            app.metrics.answered(uri.path(), response.status(), seconds);
            Ok(response)
        }
    })
}

/// The file a GET or HEAD asks for, if [`static_files::serve_file`] alone
/// gives its whole answer: not a 404, a redirect or a file the compression
/// layer must compress.
fn plain_static_file(app: &App, request: &Request) -> Option<Arc<file_cache::LiveFile>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let path = request.uri().path();
    if path
        .strip_prefix('/')
        .is_some_and(|path| ROUTES.contains(&path))
    {
        return None;
    }
    match app.files.lookup(path)? {
        Found::File(file) if static_files::answered_whole(&file, request.headers()) => Some(file),
        _ => None,
    }
}

/// How long a graceful shutdown waits for the email sender's pass to end;
/// a row it still holds is taken over after its lease by the next run.
const MAILER_SHUTDOWN: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves, then finishes the requests in progress
/// (and the email sender's pass).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let mailer = app.mail.is_some().then(|| {
        tokio::spawn(mailer::run(
            Arc::clone(&app),
            until_stopped(stopped.clone()),
        ))
    });
    if let Some(metrics_listener) = metrics_listener {
        let metrics = metrics::router(Arc::clone(&app));
        let stopped = until_stopped(stopped.clone());
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, metrics)
                .with_graceful_shutdown(stopped)
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let limits = listen::Limits::of(&app.config.server);
    let served = listen::serve(listener, site(app), limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    if let Some(mailer) = mailer
        && tokio::time::timeout(MAILER_SHUTDOWN, mailer).await.is_err()
    {
        tracing::warn!("the email sender was still sending at shutdown");
    }
    served
}

/// A 4xx/5xx page that says what went wrong. Handlers return it as an
/// error; [`draw_problem`] draws it with the site's templates.
struct Problem(StatusCode, &'static str, String);

/// What a [`Problem`] leaves in its response for [`draw_problem`].
#[derive(Clone)]
struct ProblemPage {
    title: &'static str,
    message: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(BUSY_RETRY_AFTER),
            );
        }
        response.extensions_mut().insert(ProblemPage {
            title: self.1,
            message: self.2,
        });
        response
    }
}

/// The routes whose pages come from a link with a secret token (or answer a
/// form that may carry an address): never cached, and their address never
/// sent to another site as a referrer.
const PRIVATE_ROUTES: [&str; 4] = [
    paths::CONFIRM,
    paths::UNSUBSCRIBE,
    paths::PREFERENCES,
    paths::SUBSCRIBE,
];

/// The headers every answer gets: `nosniff` (a browser must not guess a
/// type the server did not say); for HTML, the site's
/// `Content-Security-Policy` and no framing by other sites; for the private
/// routes, `no-store` and a same-origin referrer policy.
async fn security_headers(
    State(app): State<Arc<App>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let private = request
        .uri()
        .path()
        .strip_prefix('/')
        .is_some_and(|path| PRIVATE_ROUTES.contains(&path));
    let mut response = next.run(request).await;
    add_security_headers(&app, private, response.headers_mut());
    response
}

fn add_security_headers(app: &App, private: bool, headers: &mut header::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if html {
        if let Some(policy) = &app.content_security_policy {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
        }
        headers.insert(
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("DENY"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
    }
    if private {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("same-origin"),
        );
    }
}

/// Gives a [`Problem`]'s response its page, drawn like the site's pages.
async fn draw_problem(
    State(app): State<Arc<App>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // A URI's clone shares its bytes: no copy for the answers drawn as they are.
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let problem = match response.extensions().get::<ProblemPage>() {
        Some(problem) => problem.clone(),
        // Refused by axum's body limit before any handler ran.
        None if response.status() == StatusCode::PAYLOAD_TOO_LARGE => ProblemPage {
            title: "Too large",
            message: format!("A form may hold at most {} KiB.", MAX_BODY / 1024),
        },
        None => return response,
    };
    let status = response.status();
    let page = app.pages.render(
        &Page::Message {
            status: status.as_u16(),
            title: problem.title,
            message: &problem.message,
        },
        uri.path(),
    );
    let mut drawn = (status, page).into_response();
    // What the answer says to clients besides its page.
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            drawn.headers_mut().insert(name, value.clone());
        }
    }
    drawn
}

async fn static_file(State(app): State<Arc<App>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut refused = Problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Only GET and HEAD are served here.".into(),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return refused;
    }
    let uri = request.uri();
    match app.files.lookup(uri.path()) {
        Some(Found::File(file)) => {
            let mut response =
                static_files::serve_file(&file, request.headers(), &app.cache_control).await;
            add_websub_links(&app, uri.path(), response.headers_mut());
            response
        }
        Some(Found::AddSlash) => {
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            // One leading slash: `//shorts/` would name another host.
            let location = format!("/{}/{query}", uri.path().trim_start_matches('/'));
            (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        Some(Found::Moved(slug)) => {
            // Absolute, from the site's address: the path `serve` sees may
            // be behind a proxy's prefix.
            let location = app.config.site.url(&paths::short(&slug));
            (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        None => not_found(&app).await,
    }
}

/// WebSub discovery (W3C WebSub §4): a subscription feed names its hubs
/// and its own URL in `Link` headers as well as in the document, and
/// subscribers look at the headers first.
fn add_websub_links(app: &App, request_path: &str, headers: &mut HeaderMap) {
    // Most sites have no hub: their requests skip the path's normal form.
    if app.config.feeds.websub_hubs.is_empty() {
        return;
    }
    let link = static_files::normal_form(request_path)
        .and_then(|path| crate::websub::link_header(&app.config, &path));
    if let Some(value) = link.and_then(|link| header::HeaderValue::from_str(&link).ok()) {
        headers.append(header::LINK, value);
    }
}

/// The site's own `404.html` when the build wrote one, else a plain page.
async fn not_found(app: &App) -> Response {
    let page = app.config.output_dir.join(paths::NOT_FOUND);
    match tokio::fs::read(&page).await {
        Ok(html) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(_) if !app.config.output_dir.join(paths::PAGE_FILE).exists()
            && !app.config.output_dir.join(paths::INDEX).exists() =>
        {
            Problem(
                StatusCode::NOT_FOUND,
                "Nothing built yet",
                "The site has not been built into the output folder yet: run `shorts build` (or `shorts publish`), and this server serves it at once.".into(),
            )
            .into_response()
        }
        Err(_) => Problem(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.".into(),
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Runs `f` on the store on a blocking thread: SQLite waits for the disk and
/// for other processes' locks, and the async workers must stay free to serve
/// static files meanwhile.
async fn with_store<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Problem> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || f(app.store().as_ref()))
        .await
        .map_err(internal)?
        .map_err(|e| {
            if e.is_busy() || e.is_unavailable() {
                try_again(&e)
            } else {
                internal(e)
            }
        })
}

/// Seconds a client is asked to wait when the database is busy.
const BUSY_RETRY_AFTER: &str = "5";

/// Another process (a `publish`, an import) holds the database's write lock
/// for longer than `serve` waits, or the database server cannot be reached
/// (a restart, a failover; the next request connects again): 503 with
/// `Retry-After`, quickly.
fn try_again(e: &StoreError) -> Problem {
    tracing::warn!(error = %e, "the database is busy or unavailable; answered 503");
    Problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "The site is busy for a moment. Please try again in a few seconds.".into(),
    )
}

/// The subscriber a link's token names, or the 4xx page that says why not.
async fn subscriber_for(
    app: &Arc<App>,
    token: Option<&str>,
    purpose: Purpose,
) -> Result<Subscriber, Problem> {
    let bad = |message: &str| {
        Problem(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            message.to_string(),
        )
    };
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("The link has no token. Use the link from your email as it is."))?;
    let token_id = app
        .secret
        .verify(token, purpose, (app.clock)())
        .map_err(|e| {
            bad(&format!(
                "{e}. Use the link from your latest email, or sign up again."
            ))
        })?;
    with_store(app, move |store| store.subscriber_by_token_id(&token_id))
        .await?
        .ok_or_else(|| bad("This subscription no longer exists."))
}

/// Moves the subscriber a link names to `status`; following it again changes
/// nothing. Gives the subscriber as they were before.
async fn set_status_by_link(
    app: &Arc<App>,
    token: Option<&str>,
    purpose: Purpose,
    status: SubscriberStatus,
) -> Result<Subscriber, Problem> {
    let subscriber = subscriber_for(app, token, purpose).await?;
    if subscriber.status != status {
        let (id, now) = (subscriber.id, (app.clock)());
        with_store(app, move |store| store.set_status(id, status, now)).await?;
    }
    Ok(subscriber)
}

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "request failed");
    Problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.".into(),
    )
}

/// Refuses form posts made by another site (CSRF): browsers say where a
/// request comes from in `Sec-Fetch-Site` and `Origin`.
fn same_site(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let forbidden = || {
        Problem(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This form can only be sent from the site itself.".into(),
        )
    };
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site") => return Err(forbidden()),
        // The browser vouches for it; a page whose referrer policy hides
        // its origin sends `Origin: null` with it.
        Some("same-origin") => return Ok(()),
        _ => {}
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let site = app.config.site.base_url.origin().ascii_serialization();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let own = [site, format!("http://{host}"), format!("https://{host}")];
    if own.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

fn form_values(body: &Bytes, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The double opt-in sign-up. Every accepted form gets the same answer,
/// whether it was recorded, whether a confirmation went out, or whether a
/// robot filled the honeypot: no one learns which addresses are known or
/// which limit they met.
async fn subscribe(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Html<String>, Problem> {
    let (outcome, answer) = match sign_up(&app, client, &headers, body).await {
        Ok(outcome) => (outcome, Ok(check_your_inbox(&app))),
        Err((outcome, problem)) => (outcome, Err(problem)),
    };
    app.metrics.signed_up(outcome);
    answer
}

/// What [`subscribe`] does, and how it ended.
async fn sign_up(
    app: &Arc<App>,
    client: SocketAddr,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<SignUpOutcome, (SignUpOutcome, Problem)> {
    let failed = |problem| (SignUpOutcome::Failed, problem);
    same_site(app, headers).map_err(|problem| (SignUpOutcome::CrossSite, problem))?;
    let client = client::client_ip(client.ip(), headers, &app.config.server.trusted_proxies);
    if !allow_signup(app, client).await.map_err(failed)? {
        let problem = Problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ups",
            "Please wait a few minutes and try again.".into(),
        );
        return Err((SignUpOutcome::RateLimited, problem));
    }
    let new = sign_up_form(app, &body).map_err(|problem| (SignUpOutcome::Invalid, problem))?;
    if app.config.digest.is_none() {
        return Err(failed(internal("no [digest] section")));
    }
    if form_values(&body, HONEYPOT).iter().any(|v| !v.is_empty()) {
        tracing::info!("sign-up with the honeypot field filled in; nothing recorded or sent");
        return Ok(SignUpOutcome::Honeypot);
    }
    // The same single write for every address: what it is owed (a
    // confirmation, a manage link, nothing) is decided by the mailer.
    let now = (app.clock)();
    with_store(app, move |store| store.queue_sign_up(&new, now))
        .await
        .map_err(failed)?;
    app.wake.notify_one();
    Ok(SignUpOutcome::Accepted)
}

/// The sign-up form's address and tracks, validated. Nothing else in the
/// form is read: no name or referrer typed by anyone reaches the
/// confirmation email, which goes to an address that may not be theirs.
fn sign_up_form(app: &App, body: &Bytes) -> Result<crate::store::NewSubscriber, Problem> {
    let email = form_values(body, "email")
        .into_iter()
        .next()
        .unwrap_or_default();
    let tracks = form_values(body, "tracks").join(",");
    let cadence = form_values(body, "cadence").into_iter().next();
    let fields = crate::subscribers::Fields {
        email: &email,
        tracks: &tracks,
        status: "pending",
        cadence: Some(cadence.as_deref().unwrap_or_default()),
        ..Default::default()
    };
    let mut new = crate::subscribers::validate(&fields, &app.config, "web").map_err(|message| {
        Problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            message,
        )
    })?;
    new.consent_text = app.config.server.consent_version.clone();
    Ok(new)
}

/// The answer to every accepted sign-up.
fn check_your_inbox(app: &App) -> Html<String> {
    message(
        app,
        "Check your inbox",
        "If this address can subscribe, an email with a confirmation link is on its way. Nothing is sent to you until you click it.",
    )
}

/// A page that says one thing.
fn message(app: &App, title: &str, text: &str) -> Html<String> {
    // Every handler that answers with a page is at the site's root.
    app.pages.render(
        &Page::Message {
            status: 200,
            title,
            message: text,
        },
        "/",
    )
}

/// GET shows the button and changes nothing: corporate mail scanners
/// fetch every link in a message, and must not confirm for its owner.
async fn confirm_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Confirm).await?;
    if subscriber.status != SubscriberStatus::Pending {
        return Ok(confirmation_used(&app, &subscriber));
    }
    Ok(app.pages.render(
        &Page::Confirm {
            email: &subscriber.email,
            token: &token,
        },
        "/",
    ))
}

/// The button's POST: `pending` → `active`, once.
async fn confirm(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Html<String>, Problem> {
    same_site(&app, &headers)?;
    let subscriber = subscriber_for(&app, query.token.as_deref(), Purpose::Confirm).await?;
    let (id, now) = (subscriber.id, (app.clock)());
    let confirmed = with_store(&app, move |store| {
        // Together: a crash between them must not leave a subscriber
        // confirmed and never welcomed.
        let batch = store.batch()?;
        let confirmed = store.confirm(id, now)?;
        if confirmed {
            store.queue_welcome(id, now)?;
        }
        batch.commit()?;
        Ok(confirmed)
    })
    .await?;
    if !confirmed {
        return Ok(confirmation_used(&app, &subscriber));
    }
    app.metrics.confirmed();
    app.wake.notify_one();
    Ok(message(
        &app,
        "You are subscribed",
        &format!(
            "{} will get the digest. A welcome email is on its way, and every email has a link to change your tracks or unsubscribe.",
            subscriber.email
        ),
    ))
}

/// A confirmation link for someone no longer pending: it was used, and
/// using it again changes nothing (it must not re-subscribe a leaver).
fn confirmation_used(app: &App, subscriber: &Subscriber) -> Html<String> {
    let text = match subscriber.status {
        SubscriberStatus::Active => format!(
            "{} is already subscribed; this link was used. Every digest has a link to change your tracks or unsubscribe.",
            subscriber.email
        ),
        _ => "This confirmation link was already used. To subscribe again, sign up on the site."
            .to_string(),
    };
    message(app, "Link already used", &text)
}

/// GET shows a button and changes nothing: link scanners prefetch GETs.
async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Unsubscribe).await?;
    let preferences_token = app
        .secret
        .sign(Purpose::Preferences, &subscriber.token_id, None);
    Ok(app.pages.render(
        &Page::Unsubscribe {
            subscriber: &subscriber,
            token: &token,
            preferences_token: &preferences_token,
        },
        "/",
    ))
}

/// RFC 8058 one-click (body `List-Unsubscribe=One-Click`) and the page's button
/// both land here; repeating it is harmless.
async fn unsubscribe(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let subscriber = set_status_by_link(
        &app,
        query.token.as_deref(),
        Purpose::Unsubscribe,
        SubscriberStatus::Unsubscribed,
    )
    .await?;
    if subscriber.status != SubscriberStatus::Unsubscribed {
        app.metrics.unsubscribed();
    }
    Ok(message(
        &app,
        "You are unsubscribed",
        &format!("{} will get no more digests.", subscriber.email),
    ))
}

async fn preferences_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Preferences).await?;
    let tags = site_tags(&app).await?;
    Ok(preferences(&app, &subscriber, &token, &tags, None))
}

/// The tags the site's shorts use, as the last build wrote them.
async fn site_tags(app: &Arc<App>) -> Result<Arc<Vec<crate::model::Tag>>, Problem> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || app.site_tags.read(&app.config.output_dir))
        .await
        .map_err(internal)
}

async fn update_preferences(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Html<String>, Problem> {
    same_site(&app, &headers)?;
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Preferences).await?;
    let (chosen, chosen_tags) = (form_values(&body, "tracks"), form_values(&body, "tags"));
    if chosen.is_empty() && chosen_tags.is_empty() {
        return Err(Problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose at least one track or tag",
            "To get nothing at all, use the unsubscribe link instead.".into(),
        ));
    }
    let tags = site_tags(&app).await?;
    known_tags(&app, &chosen_tags, &tags, &subscriber).map_err(check_the_form)?;
    let (tracks, chosen_tags) = (chosen.join(","), chosen_tags.join(","));
    let cadence = form_values(&body, "cadence").into_iter().next();
    let fields = crate::subscribers::Fields {
        email: &subscriber.email,
        tracks: &tracks,
        tags: &chosen_tags,
        cadence: cadence.as_deref(),
        ..Default::default()
    };
    let validated =
        crate::subscribers::validate(&fields, &app.config, "web").map_err(check_the_form)?;
    let pause = Pause {
        paused: form_values(&body, "paused").iter().any(|v| v == "yes"),
        catch_up: form_values(&body, "catch_up").iter().any(|v| v == "yes"),
    };
    let now = (app.clock)();
    let updated = Subscriber {
        tracks: validated.tracks,
        tags: validated.tags,
        cadence: validated
            .cadence
            .unwrap_or_else(|| subscriber.cadence.clone()),
        paused: pause.paused,
        ..subscriber.clone()
    };
    let saved = updated.clone();
    with_store(&app, move |store| {
        save_preferences(store, &subscriber, &saved, pause.catch_up, now)
    })
    .await?;
    Ok(preferences(&app, &updated, &token, &tags, Some("Saved.")))
}

/// The pause box of the preferences form.
#[derive(Clone, Copy)]
struct Pause {
    paused: bool,
    /// On resuming: bring what was missed.
    catch_up: bool,
}

/// Writes what changed between `old` and `new`, in one transaction.
fn save_preferences(
    store: &dyn crate::store::Store,
    old: &Subscriber,
    new: &Subscriber,
    catch_up: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), crate::store::StoreError> {
    let batch = store.batch()?;
    store.set_follows(new.id, &new.tracks, &new.tags, now)?;
    if new.cadence != old.cadence {
        store.set_cadence(new.id, &new.cadence, now)?;
    }
    match (old.paused, new.paused) {
        (false, true) => store.pause(new.id, now)?,
        (true, false) => store.resume(new.id, catch_up, now)?,
        _ => {}
    }
    batch.commit()
}

fn preferences(
    app: &App,
    subscriber: &Subscriber,
    token: &str,
    site_tags: &[crate::model::Tag],
    notice: Option<&str>,
) -> Html<String> {
    let unsubscribe_token = app
        .secret
        .sign(Purpose::Unsubscribe, &subscriber.token_id, None);
    app.pages.render(
        &Page::Preferences {
            subscriber,
            token,
            unsubscribe_token: &unsubscribe_token,
            tags: site_tags,
            notice,
        },
        "/",
    )
}

fn check_the_form(message: String) -> Problem {
    Problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Please check the form",
        message,
    )
}

/// Refuses a tag no short of the site uses, naming it. A tag the reader
/// already follows stays valid after its last short lost it: the form
/// still shows it, ticked.
fn known_tags(
    app: &App,
    chosen: &[String],
    site_tags: &[crate::model::Tag],
    subscriber: &Subscriber,
) -> Result<(), String> {
    match chosen
        .iter()
        .find(|t| !site_tags.iter().any(|s| s.slug == **t) && !subscriber.tags.contains(t))
    {
        Some(unknown) => Err(format!(
            "Unknown tag {unknown:?}: expected one of the tags the site's shorts use ({}).",
            app.config.site.url(paths::TAGS)
        )),
        None => Ok(()),
    }
}
