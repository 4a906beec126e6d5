//! `shorts serve`: the output folder and the subscription endpoints over HTTP.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use shorts::clock;
use shorts::config::Config;
use shorts::delivery::compose::Signer;
use shorts::diagnostics::{Problems, display_path};
use shorts::http_client::HttpClient;
use shorts::render::subscription_mail::SubscriptionMail;
use shorts::server::pages::ServerPages;
use shorts::server::webhooks::{self, Webhooks};
use shorts::store::Database;
use shorts::tokens::Secret;

use super::{CliError, Ctx};

/// How long a request waits for another process's write lock on the database.
const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, as HOST:PORT (default: [server] bind, 127.0.0.1:8080); port 0 picks a free one.
    #[arg(long, value_name = "ADDR", value_parser = bind_address)]
    bind: Option<String>,
    /// Where Prometheus scrapes /metrics, as HOST:PORT (default: [server] metrics_bind, else 127.0.0.1:9464 when free); "" for none.
    #[arg(long, value_name = "ADDR", value_parser = metrics_address)]
    metrics_bind: Option<String>,
}

fn metrics_address(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    bind_address(text)
}

/// Refuses a bare port such as `8081` on the command line (exit 2) instead of
/// failing to listen later.
fn bind_address(text: &str) -> Result<String, String> {
    shorts::config::check_bind(text).map(|()| text.to_string())
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let config = ctx.config;
    let bind = args.bind.as_deref().unwrap_or(&config.server.bind);
    let app = Arc::new(app(config)?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("listening on {bind}"))?;
        let address = listener.local_addr()?;
        let metrics = metrics_listener(config, args.metrics_bind.as_deref()).await?;
        if !config.output_dir.exists() {
            tracing::warn!(
                folder = %display_path(&config.output_dir),
                "nothing is built yet: run `shorts build` or `shorts publish`; until then every page is a 404"
            );
        }
        ctx.say(&format!(
            "listening on http://{address}/ (serving {})",
            display_path(&config.output_dir)
        ));
        if let Some(metrics) = &metrics {
            let path = shorts::server::metrics::PATH;
            ctx.say(&format!("metrics on http://{}{path}", metrics.local_addr()?));
        }
        shorts::server::serve(app, listener, metrics, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // An email stuck on a relay that does not answer must not hold up the
    // exit: its row is taken over after its lease by the next run.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(())
}

/// The metrics' listener: at the address given (`--metrics-bind`, else
/// `[server] metrics_bind`), which must be free; with neither, at the
/// default address when it is free (a second `serve` on the host goes on
/// without, and says so); none for `""`.
async fn metrics_listener(
    config: &Config,
    flag: Option<&str>,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let (bind, given) = match flag.or(config.server.metrics_bind.as_deref()) {
        Some("") => return Ok(None),
        Some(bind) => (bind, true),
        None => (shorts::config::DEFAULT_METRICS_BIND, false),
    };
    match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if given => Err(e).with_context(|| format!("listening for metrics on {bind}")),
        Err(e) => {
            tracing::warn!(
                address = bind,
                error = %e,
                "no metrics: the default address is taken; set [server] metrics_bind (\"\" for none)"
            );
            Ok(None)
        }
    }
}

fn app(config: &Config) -> Result<shorts::server::App, CliError> {
    let secret = Secret::load(config.data_dir(), &config.database)?;
    // Readers are answered "busy, try again" (503) after this long behind
    // another process's write, not held for the default 10 s.
    let store = Database::open(&config.database)?.with_busy_timeout(STORE_WAIT)?;
    let signer = config
        .delivery
        .dkim
        .as_ref()
        .map(Signer::load)
        .transpose()?;
    let clock = Box::new(|| clock::now().unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
    let app = shorts::server::App::new(
        config.clone(),
        Box::new(store),
        secret,
        signer,
        clock,
        webhooks(config)?,
        server_pages(config)?,
    );
    Ok(match subscription_mail(config)? {
        Some(mail) => app.with_subscription_mail(mail),
        None => app,
    })
}

/// The templates of the pages `serve` draws, checked now (exit 1 on a
/// broken one).
fn server_pages(config: &Config) -> Result<ServerPages, CliError> {
    let pages = ServerPages::load(config).map_err(CliError::invalid)?;
    pages
        .check()
        .map_err(|problem| CliError::invalid(Problems(vec![problem])))?;
    Ok(pages)
}

/// With a `[digest]`, the templates of the confirmation, welcome and manage
/// emails, checked now: a broken one is refused at start (exit 1) rather
/// than found when the first reader signs up.
fn subscription_mail(config: &Config) -> Result<Option<SubscriptionMail>, CliError> {
    if config.digest.is_none() {
        return Ok(None);
    }
    let mail = SubscriptionMail::load(config).map_err(CliError::invalid)?;
    mail.check(config)
        .map_err(|problem| CliError::invalid(Problems(vec![problem])))?;
    Ok(Some(mail))
}

/// `[inbound.webhooks]` with its password read from the environment, and
/// the HTTPS client that fetches SNS certificates (with the tests' hooks,
/// `SHORTS_SNS_CA` and `SHORTS_SNS_CONNECT`).
fn webhooks(config: &Config) -> Result<Webhooks, CliError> {
    let settings = &config.inbound.webhooks;
    let postmark = settings
        .postmark_token_env
        .as_deref()
        .map(password_from_env)
        .transpose()?;
    let roots =
        match std::env::var_os(webhooks::TEST_CA_ENV) {
            Some(path) => Some(std::fs::read(&path).with_context(|| {
                format!("reading {} ({})", webhooks::TEST_CA_ENV, path.display())
            })?),
            None => None,
        };
    let connect_to = std::env::var(webhooks::TEST_CONNECT_ENV).ok();
    let https = HttpClient::new(roots.as_deref(), connect_to)
        .map_err(|e| CliError::failure(anyhow::anyhow!(e)))?;
    Ok(Webhooks::new(
        postmark,
        settings.sns_topic_arns.clone(),
        https,
    ))
}

/// The value of the environment variable `name`, which must be set (exit 1).
fn password_from_env(name: &str) -> Result<String, CliError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            CliError::invalid_message(format!(
                "`inbound.webhooks.postmark_token_env` names {name}, which is not set in the environment"
            ))
        })
}

/// Resolves on SIGTERM or SIGINT, for a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
