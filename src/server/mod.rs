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
pub mod https;
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

use crate::config::{Config, DigestConfig};
use crate::delivery::compose::Signer;
use crate::delivery::verp;
use crate::model::{Subscriber, SubscriberStatus};
use crate::paths;
use crate::store::{Store, StoreError};
use crate::tokens::{Purpose, Secret};
use static_files::Resolved;

/// Request bodies larger than this are refused with 413 (the webhooks
/// take up to [`webhooks::WEBHOOK_BODY`]).
pub const MAX_BODY: usize = 16 * 1024;
/// Sign-ups per client address per window.
const SIGNUPS_PER_WINDOW: u32 = 5;
const SIGNUP_WINDOW: Duration = Duration::from_secs(600);
/// How long a confirmation link works.
const CONFIRM_VALID_HOURS: i64 = 48;
/// The window of `[server] confirmations_per_address`.
const CONFIRMATIONS_WINDOW_HOURS: i64 = 24;
/// The sign-up form's field that people never fill (it is hidden from
/// sight and says to leave it empty); form-filling robots do.
const HONEYPOT: &str = "website";

pub struct App {
    pub config: Config,
    pub store: Mutex<Box<dyn Store>>,
    pub secret: Secret,
    /// Signs confirmation emails as digests are signed, when `[delivery.dkim]` is set.
    pub signer: Option<Signer>,
    pub cache_control: String,
    pub clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    pub webhooks: webhooks::Webhooks,
    signups: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    site_tags: site_tags::SiteTags,
}

impl App {
    pub fn new(
        config: Config,
        store: Box<dyn Store>,
        secret: Secret,
        signer: Option<Signer>,
        clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
        webhooks: webhooks::Webhooks,
    ) -> Self {
        App {
            cache_control: config.server.cache_control.clone(),
            config,
            store: Mutex::new(store),
            secret,
            signer,
            clock,
            webhooks,
            signups: Mutex::new(HashMap::new()),
            site_tags: site_tags::SiteTags::default(),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn Store>> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True while `ip` may sign up again.
    fn allow_signup(&self, ip: IpAddr) -> bool {
        let mut signups = self.signups.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        signups.retain(|_, (since, _)| now.duration_since(*since) < SIGNUP_WINDOW);
        let entry = signups.entry(ip).or_insert((now, 0));
        entry.1 += 1;
        entry.1 <= SIGNUPS_PER_WINDOW
    }
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
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .br(true),
        )
        .with_state(app)
}

/// Serves until `shutdown` resolves, then finishes the requests in progress.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A 4xx/5xx page that says what went wrong.
struct Problem(StatusCode, &'static str, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.0, pages::page(self.1, &pages::paragraph(&self.2))).into_response()
    }
}

async fn static_file(State(app): State<Arc<App>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return Problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Only GET and HEAD are served here.".into(),
        )
        .into_response();
    }
    let uri = request.uri();
    match static_files::resolve(&app.config.output_dir, uri.path()) {
        Some(Resolved::File(path)) => {
            static_files::serve_file(&path, &method, request.headers(), &app.cache_control).await
        }
        Some(Resolved::AddSlash) => {
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            let location = format!("{}/{query}", uri.path());
            (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        None => not_found(&app).await,
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
        .map_err(internal)
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

/// Moves the subscriber a link names to `status`; following it again changes nothing.
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
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(forbidden());
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
    same_site(&app, &headers)?;
    let client = client::client_ip(client.ip(), &headers, &app.config.server.trusted_proxies);
    if !app.allow_signup(client) {
        return Err(Problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ups",
            "Please wait a few minutes and try again.".into(),
        ));
    }
    let new = sign_up_form(&app, &body)?;
    let digest_config = app
        .config
        .digest
        .clone()
        .ok_or_else(|| internal("no [digest] section"))?;
    if form_values(&body, HONEYPOT).iter().any(|v| !v.is_empty()) {
        tracing::info!("sign-up with the honeypot field filled in; nothing recorded or sent");
        return Ok(check_your_inbox());
    }
    let now = (app.clock)();
    let limit = app.config.server.confirmations_per_address;
    let since = now - chrono::Duration::hours(CONFIRMATIONS_WINDOW_HOURS);
    let to_confirm = with_store(&app, move |store| {
        let Some(subscriber) = store.sign_up(&new, now)? else {
            return Ok(None);
        };
        if store.record_confirmation(&subscriber.email, since, now, limit)? {
            return Ok(Some(subscriber));
        }
        tracing::info!(
            subscriber = subscriber.id,
            limit,
            "sign-up of an address already sent {limit} confirmation emails in {CONFIRMATIONS_WINDOW_HOURS} hours; none sent"
        );
        Ok(None)
    })
    .await?;
    if let Some(subscriber) = to_confirm {
        send_confirmation(&app, &digest_config, &subscriber, now).await?;
    }
    Ok(check_your_inbox())
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
    let mut new =
        crate::subscribers::validate(&email, "", &tracks, "", "pending", &app.config, "web")
            .map_err(|message| {
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
fn check_your_inbox() -> Html<String> {
    pages::page(
        "Check your inbox",
        &pages::paragraph(
            "If this address can subscribe, an email with a confirmation link is on its way. Nothing is sent to you until you click it.",
        ),
    )
}

/// Mails `subscriber` the link that confirms their sign-up.
async fn send_confirmation(
    app: &App,
    digest_config: &DigestConfig,
    subscriber: &Subscriber,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let token = app.secret.sign(
        Purpose::Confirm,
        &subscriber.token_id,
        Some(now + chrono::Duration::hours(CONFIRM_VALID_HOURS)),
    );
    let url = app.config.site.url(&paths::confirm(&token));
    let message = crate::delivery::compose::confirmation(
        digest_config,
        &app.config.site.title,
        subscriber,
        &url,
        now,
        app.signer.as_ref(),
        verp::returns(
            app.config.delivery.bounce_address.as_ref(),
            &app.secret,
            verp::Sent::Confirmation {
                subscriber: subscriber.id,
            },
        )
        .as_ref(),
    )
    .map_err(internal)?;
    let config = app.config.clone();
    // lettre's SMTP client blocks: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let transport = crate::delivery::from_config(&config).map_err(|e| e.to_string())?;
        crate::delivery::send_with_retry(transport.as_ref(), &message, "confirmations")
            .map_err(|(e, _)| e.to_string())
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(())
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
        return Ok(confirmation_used(&subscriber));
    }
    Ok(pages::page(
        "Confirm your subscription",
        &pages::confirm_form(&subscriber.email, &token),
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
    let confirmed = with_store(&app, move |store| store.confirm(id, now)).await?;
    if !confirmed {
        return Ok(confirmation_used(&subscriber));
    }
    Ok(pages::page(
        "You are subscribed",
        &pages::paragraph(&format!(
            "{} will get the weekly digest. Every email has a link to change your tracks or unsubscribe.",
            subscriber.email
        )),
    ))
}

/// A confirmation link for someone no longer pending: it was used, and
/// using it again changes nothing (it must not re-subscribe a leaver).
fn confirmation_used(subscriber: &Subscriber) -> Html<String> {
    let text = match subscriber.status {
        SubscriberStatus::Active => format!(
            "{} is already subscribed; this link was used. Every digest has a link to change your tracks or unsubscribe.",
            subscriber.email
        ),
        _ => "This confirmation link was already used. To subscribe again, sign up on the site."
            .to_string(),
    };
    pages::page("Link already used", &pages::paragraph(&text))
}

/// GET shows a button and changes nothing: link scanners prefetch GETs.
async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Unsubscribe).await?;
    Ok(pages::page(
        "Unsubscribe",
        &pages::unsubscribe_form(&subscriber.email, &token),
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
    Ok(pages::page(
        "You are unsubscribed",
        &pages::paragraph(&format!("{} will get no more digests.", subscriber.email)),
    ))
}

async fn preferences_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, Problem> {
    let token = query.token.clone().unwrap_or_default();
    let subscriber = subscriber_for(&app, Some(&token), Purpose::Preferences).await?;
    let tags = site_tags(&app).await?;
    Ok(pages::page(
        "Your tracks",
        &pages::preferences_form(&app.config, &tags, &subscriber, &token, None),
    ))
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
    let validated = crate::subscribers::validate(
        &subscriber.email,
        "",
        &chosen.join(","),
        &chosen_tags.join(","),
        "",
        &app.config,
        "web",
    )
    .map_err(check_the_form)?;
    let now = (app.clock)();
    let updated = Subscriber {
        tracks: validated.tracks,
        tags: validated.tags,
        ..subscriber
    };
    let (id, tracks, chosen_tags) = (updated.id, updated.tracks.clone(), updated.tags.clone());
    with_store(&app, move |store| {
        store.set_follows(id, &tracks, &chosen_tags, now)
    })
    .await?;
    Ok(pages::page(
        "Your tracks",
        &pages::preferences_form(&app.config, &tags, &updated, &token, Some("Saved.")),
    ))
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
