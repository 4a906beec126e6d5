//! `config.toml`: parsing, defaults and validation.
//!
//! [`Config::parse`] turns text into a validated [`Config`] or a list of
//! [`Problem`]s naming the file, line and key; [`Config::load`] adds the file
//! read. Paths in the file are relative to the file's folder. Unknown keys are
//! errors. Secrets never live here; this module reads no environment.

mod document;

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::diagnostics::{Problem, Problems, line_of_offset};
use crate::model::{Track, is_slug};
use crate::store::Location;

/// The validated configuration of one site.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    pub site: Site,
    /// Tracks in the order the file lists them; that order is used everywhere.
    pub tracks: Vec<Track>,
    pub feeds: FeedsConfig,
    /// Where the shorts live: `<content_dir>/shorts/*.md`.
    pub content_dir: PathBuf,
    /// Where `shorts build` writes the site.
    pub output_dir: PathBuf,
    /// `[digest]`, when the site sends one.
    pub digest: Option<DigestConfig>,
    pub delivery: DeliveryConfig,
    /// Where subscribers and the delivery ledger live: an SQLite file, or
    /// a PostgreSQL server (`SHORTS_DATABASE_URL` overrides the file's).
    pub database: Location,
    /// The folder of the signing key, the run lock and the build cache:
    /// the SQLite file's, or `data/` beside the config for PostgreSQL.
    data_dir: PathBuf,
    /// Where `shorts digest preview` writes its files.
    pub preview_dir: PathBuf,
    /// Whether fenced code blocks in a language syntect knows are
    /// highlighted (`[build] highlight_code`, default true).
    pub highlight_code: bool,
    /// Whether `$…$` and `$$…$$` in a body are LaTeX formulas, written as
    /// MathML (`[build] math`, default true).
    pub math: bool,
    /// Folder of user templates that replace the built-in ones of the same name.
    pub templates_dir: PathBuf,
    pub server: ServerConfig,
    pub pages: PagesConfig,
    pub inbound: InboundConfig,
}

/// `[pages]`: the words on the web pages that are not in any short.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PagesConfig {
    /// The site's name in every page's header. Default: `site.title`.
    pub name: Option<String>,
    /// The index page's heading. Default `Shorts`.
    pub heading: String,
    /// The line under the heading, e.g. `One idea at a time`.
    pub tagline: String,
    /// The paragraph under the tagline. Default: `site.description`.
    pub intro: Option<String>,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            name: None,
            heading: "Shorts".into(),
            tagline: String::new(),
            intro: None,
        }
    }
}

/// `[server]`: `shorts serve`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080`.
    pub bind: String,
    /// `Cache-Control` for files from the output folder. Default `public, max-age=300`.
    pub cache_control: String,
    /// The version of the sign-up form's consent text, recorded with every
    /// web sign-up (GDPR Art. 7(1)). Change it when you change that text. Default `1`.
    pub consent_version: String,
    /// Reverse proxies in front of `serve` (addresses or CIDR ranges): only
    /// from these peers is the client read from `Forwarded` /
    /// `X-Forwarded-For`. Default none: those headers are ignored.
    pub trusted_proxies: Vec<Cidr>,
    /// At most this many confirmation emails to one address in 24 hours,
    /// however many clients ask (list-bombing). Default 3.
    pub confirmations_per_address: u32,
    /// `shorts publish` (and each `shorts schedule` run) deletes pending
    /// sign-ups older than this many days. Default 7.
    pub pending_expiry_days: u32,
    /// The `Content-Security-Policy` of every HTML page: by default the
    /// site's own scripts and styles only, images from anywhere over HTTPS,
    /// no framing by other sites. Empty sends none (e.g. when shorts embed
    /// videos from another site and the proxy sets its own).
    pub content_security_policy: String,
    /// A client must send a request's headers within this many seconds, or
    /// the connection is closed (slowloris). Default 10.
    pub header_timeout_secs: u64,
    /// A request must be answered within this many seconds, its body read
    /// included, or it gets 408 (a declared body that never comes). Default 30.
    pub request_timeout_secs: u64,
    /// At most this many connections are open at once; more are closed as
    /// they arrive, so the process never runs out of descriptors. Default 512.
    pub max_connections: usize,
    /// On SIGTERM, requests in progress get this many seconds to finish. Default 10.
    pub shutdown_timeout_secs: u64,
    /// Where `serve` answers Prometheus's scrapes (`/metrics`), apart from
    /// the site. Unset: [`DEFAULT_METRICS_BIND`] when that port is free;
    /// `""`: nowhere.
    pub metrics_bind: Option<String>,
}

/// Where the metrics are when `[server] metrics_bind` is not set: loopback
/// only, on the port OpenTelemetry's Prometheus exporters use.
pub const DEFAULT_METRICS_BIND: &str = "127.0.0.1:9464";

/// The environment variable whose `postgres://` URL (or path) takes the
/// place of `[build] database`, so a password need not be in the file.
pub const DATABASE_URL_ENV: &str = "SHORTS_DATABASE_URL";

/// The site's own script and stylesheet only; images may come from any
/// HTTPS host (shorts link them); no other site may frame a page.
pub const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' https: data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// An address range, `10.0.0.0/8` or `::1/128`; a bare address is one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Cidr, String> {
        let invalid = || {
            format!(
                "`server.trusted_proxies`: {text:?} is not an IP address or CIDR range like 10.0.0.0/8"
            )
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.as_str(), None),
        };
        let network: std::net::IpAddr = address.trim().parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` bits of `a` and `b` are equal.
fn prefix_matches(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            cache_control: "public, max-age=300".into(),
            consent_version: "1".into(),
            trusted_proxies: Vec::new(),
            confirmations_per_address: 3,
            pending_expiry_days: 7,
            content_security_policy: DEFAULT_CSP.into(),
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 512,
            shutdown_timeout_secs: 10,
            metrics_bind: None,
        }
    }
}

/// `[inbound]`: what `shorts inbound` does with mail that comes back.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// Soft bounces (mailbox full, blocked, delayed) within
    /// `soft_bounce_days` after which a subscriber is `bounced`. Default 3.
    pub soft_bounce_limit: u32,
    /// The window for `soft_bounce_limit`, in days. Default 30.
    pub soft_bounce_days: u32,
    /// A bounce or complaint about a digest sent longer ago than this is not
    /// acted on: its return path has expired. Default 90.
    pub expire_days: u32,
    /// Where messages from standard input that were not acted on are kept,
    /// as a Maildir, relative to the config file. Default `inbound` beside the database.
    pub keep_dir: Option<PathBuf>,
    /// `[inbound.webhooks]`: relays that report bounces and complaints to `serve`.
    pub webhooks: WebhooksConfig,
}

/// `[inbound.webhooks]`: which relays may report to `shorts serve`, and how
/// each proves who it is. An endpoint without its key here answers 404.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The NAME of the environment variable holding the password Postmark
    /// sends with HTTP Basic auth (user `shorts`) to `/webhooks/postmark`.
    pub postmark_token_env: Option<String>,
    /// The SNS topics Amazon SES notifies through; `/webhooks/ses` accepts
    /// messages of these topics only, signed by SNS.
    pub sns_topic_arns: Vec<String>,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            soft_bounce_limit: 3,
            soft_bounce_days: 30,
            expire_days: 90,
            keep_dir: None,
            webhooks: WebhooksConfig::default(),
        }
    }
}

/// `[digest]`: when the weekly email goes out and what it says.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Five-field cron expression in the site's time zone, e.g. `0 8 * * MON`.
    pub schedule: croner::Cron,
    pub schedule_text: String,
    pub from: lettre::message::Mailbox,
    pub reply_to: Option<lettre::message::Mailbox>,
    /// Tera template string for the subject line.
    pub subject: String,
    /// The sender's postal address, shown in every footer (CAN-SPAM).
    pub postal_address: String,
    /// The `List-Id` header value, e.g. `Shorts <digest.example.org>`.
    pub list_id: String,
    /// Where `mailto:` unsubscribe requests go.
    pub unsubscribe_mailto: lettre::Address,
    /// `publish` and `schedule` send a digest at most this long after its slot.
    pub grace: chrono::Duration,
    /// The rhythms readers may choose: the default (from `schedule` and
    /// `subject`) first, then each of `[[digest.cadences]]`.
    pub cadences: Vec<Cadence>,
}

impl DigestConfig {
    /// The default cadence, `[digest] schedule`.
    pub fn default_cadence(&self) -> &Cadence {
        &self.cadences[0]
    }

    /// The cadence readers and commands call `name`.
    pub fn cadence_named(&self, name: &str) -> Option<&Cadence> {
        self.cadences.iter().find(|c| c.name == name)
    }

    /// The cadence a subscriber's stored key stands for: the default for
    /// one the config no longer offers, so nobody is left without mail.
    pub fn cadence_of(&self, key: &str) -> &Cadence {
        self.cadences
            .iter()
            .find(|c| c.key == key)
            .unwrap_or(self.default_cadence())
    }

    /// The stored keys of every cadence but the default.
    pub fn other_keys(&self) -> Vec<&str> {
        self.cadences[1..].iter().map(|c| c.key.as_str()).collect()
    }
}

/// A rhythm a reader may choose for their digest.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// What subscribers and the ledger store: "" for the default, so
    /// renaming it in the config moves nobody.
    pub key: String,
    /// What readers and commands call it: "weekly", "daily".
    pub name: String,
    /// What the sign-up and preferences pages show: "Weekly".
    pub label: String,
    pub when: When,
    /// Tera template for the subject line of its messages.
    pub subject: String,
}

impl Cadence {
    pub fn is_default(&self) -> bool {
        self.key.is_empty()
    }
}

/// When a cadence's digests are due.
#[derive(Debug, Clone)]
pub enum When {
    /// At each slot of a five-field cron expression, in the site's time zone.
    Cron {
        schedule: Box<croner::Cron>,
        text: String,
    },
    /// At every `publish` or `schedule` run that finds a short newly published.
    Instant,
}

/// `[delivery]`: how messages leave.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub transport: Transport,
    /// The folder the outbox transport writes `.eml` files into.
    pub outbox_dir: PathBuf,
    pub dkim: Option<DkimConfig>,
    /// Where mail that comes back goes: each message's envelope sender is
    /// this address with a signed `+token` naming the delivery (VERP), and
    /// `CFBL-Address` names it for complaint feedback loops. Unset: the
    /// envelope sender is `[digest] from`, as before.
    pub bounce_address: Option<lettre::Address>,
}

#[derive(Debug, Clone)]
pub enum Transport {
    Outbox,
    Smtp(SmtpConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain text; only allowed to a loopback host.
    None,
    /// STARTTLS, required (the connection fails rather than fall back to plain text).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// `[delivery.smtp]`. The password itself is never here: `password_env` names
/// the environment variable that holds it.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default 587 for starttls, 465 for tls, 25 for none.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_tls")]
    pub tls: Tls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Connections used at once. Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Messages per second across all connections; 0 = no limit. Default 0.
    #[serde(default)]
    pub rate_limit: f64,
    /// Seconds before a silent server counts as a failed attempt. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Attempts per message on temporary (4xx) failures. Default 4.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the first retry, doubled after each one. Default 1000.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// A PEM file of CA certificates trusted besides the built-in web roots,
    /// for a relay whose certificate a private CA signed. Relative to the
    /// config file as written; absolute once loaded, and known to hold at
    /// least one certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Messages in a row that may end in a temporary failure (after their
    /// own retries) before the run stops: a server that defers everyone is
    /// not tried for every subscriber. 0 = never stop. Default 10.
    #[serde(default = "default_max_consecutive_failures")]
    pub max_consecutive_failures: u32,
}

impl std::fmt::Debug for SmtpConfig {
    // Written by hand so a debug print can never grow a secret by accident.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("pool_size", &self.pool_size)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

fn default_tls() -> Tls {
    Tls::Starttls
}
fn default_pool_size() -> u32 {
    4
}
fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    4
}
fn default_backoff() -> u64 {
    1000
}
fn default_max_consecutive_failures() -> u32 {
    10
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::Starttls => 587,
            Tls::Tls => 465,
            Tls::None => 25,
        })
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `[delivery.dkim]`: sign every message.
#[derive(Debug, Clone)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub private_key_path: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// Absolute, ends with `/`.
    pub base_url: Url,
    pub author: Author,
    /// BCP 47 language tag, e.g. `en` or `en-GB`.
    pub language: String,
    /// Bare dates in front matter are midnight in this zone.
    pub timezone: Tz,
}

impl Site {
    /// The absolute URL of `path` (relative, e.g. `tags/x/rss.xml`) on the site.
    pub fn url(&self, path: &str) -> String {
        let base = &self.base_url;
        base.join(path)
            .map_or_else(|_| format!("{base}{path}"), String::from)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Author {
    pub name: String,
    /// Shown in feeds; RSS `<author>` needs it, without it RSS uses `dc:creator`.
    #[serde(default)]
    pub email: Option<String>,
    /// The author's home page; defaults to the site's base URL in feeds.
    #[serde(default)]
    pub url: Option<String>,
}

/// `[feeds]`: what every feed says and how long it is.
///
/// The title and description keys are Tera template strings. Every one sees
/// `site` (title, description, base_url, language); track feeds also see
/// `track` (slug, title, description) and tag feeds `tag` (slug, name).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Items per feed, newest first; 0 means every item. Default 50.
    pub limit: usize,
    /// Default `"{{ site.title }}"`.
    pub title: String,
    /// Default `"{{ site.description }}"`.
    pub description: String,
    /// Default `"{{ site.title }}: {{ track.title }}"`.
    pub track_title: String,
    /// Default `"{{ track.description }}"`.
    pub track_description: String,
    /// Default `"{{ site.title }}: #{{ tag.name }}"`.
    pub tag_title: String,
    /// Default `"Shorts tagged {{ tag.name }} on {{ site.title }}"`.
    pub tag_description: String,
    /// Write `feed.xsl` and `feed.css` and link them from the XML feeds, so a
    /// browser shows a feed as a page. Default true.
    pub stylesheet: bool,
    /// WebSub hubs (W3C WebSub): every subscription feed names them, and
    /// `publish` and `schedule` tell each one which feeds changed. Each an
    /// absolute http(s) URL. Default none.
    pub websub_hubs: Vec<String>,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            limit: 50,
            title: "{{ site.title }}".into(),
            description: "{{ site.description }}".into(),
            track_title: "{{ site.title }}: {{ track.title }}".into(),
            track_description: "{{ track.description }}".into(),
            tag_title: "{{ site.title }}: #{{ tag.name }}".into(),
            tag_description: "Shorts tagged {{ tag.name }} on {{ site.title }}".into(),
            stylesheet: true,
            websub_hubs: Vec::new(),
        }
    }
}

impl FeedsConfig {
    /// Every template string with its key, for validation and compilation.
    pub fn templates(&self) -> [(&'static str, &str); 6] {
        [
            ("title", &self.title),
            ("description", &self.description),
            ("track_title", &self.track_title),
            ("track_description", &self.track_description),
            ("tag_title", &self.tag_title),
            ("tag_description", &self.tag_description),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    #[serde(default)]
    tracks: Vec<RawTrack>,
    #[serde(default)]
    feeds: Option<Spanned<FeedsConfig>>,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    digest: Option<Spanned<RawDigest>>,
    #[serde(default)]
    delivery: Option<Spanned<RawDelivery>>,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    pages: PagesConfig,
    #[serde(default)]
    inbound: InboundConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    schedule: Spanned<String>,
    from: Spanned<String>,
    #[serde(default)]
    reply_to: Option<Spanned<String>>,
    #[serde(default = "default_subject")]
    subject: Spanned<String>,
    postal_address: String,
    #[serde(default)]
    list_id: Option<String>,
    #[serde(default)]
    unsubscribe_mailto: Option<Spanned<String>>,
    #[serde(default = "default_grace_hours")]
    grace_hours: u32,
    /// The default cadence's name, as readers and commands say it.
    #[serde(default = "default_cadence_name")]
    cadence: Spanned<String>,
    /// The default cadence's name on forms.
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    cadences: Vec<Spanned<RawCadence>>,
}

/// `[[digest.cadences]]`: a rhythm readers may choose besides the default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCadence {
    name: Spanned<String>,
    /// A cron expression, or "instant".
    schedule: Spanned<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    subject: Option<Spanned<String>>,
}

fn default_cadence_name() -> Spanned<String> {
    Spanned::new(0..0, "weekly".to_string())
}

/// "daily" → "Daily": a label where none is given.
fn label_of(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first
            .to_uppercase()
            .chain(chars)
            .collect::<String>()
            .replace('-', " ")
    })
}

fn default_grace_hours() -> u32 {
    24
}

fn default_subject() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_SUBJECT.to_string())
}

/// Why `name` cannot name a cadence, if it cannot: a lowercase word
/// (letters, digits, hyphens) that `taken` does not hold.
fn cadence_name(name: &str, taken: &[&str]) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "{name:?} is not a cadence name; expected a lowercase word such as \"daily\" (letters, digits and hyphens)"
        ));
    }
    if taken.contains(&name) {
        return Err(format!(
            "{name:?} is given twice; each cadence needs its own name"
        ));
    }
    Ok(())
}

/// The subject line of another cadence's messages when neither it nor
/// `[digest]` sets one: its label tells them from the default's.
pub const DEFAULT_CADENCE_SUBJECT: &str = "{{ site.title }} {{ digest.cadence }} #{{ digest.number }}: {{ digest.count }} new short{% if digest.count != 1 %}s{% endif %}";

/// The subject line when `[digest] subject` is not set.
pub const DEFAULT_SUBJECT: &str = "{{ site.title }} #{{ digest.number }}: {{ digest.count }} new short{% if digest.count != 1 %}s{% endif %}";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    #[serde(default = "default_transport")]
    transport: Spanned<String>,
    #[serde(default = "default_outbox")]
    outbox_dir: PathBuf,
    #[serde(default)]
    smtp: Option<SmtpConfig>,
    #[serde(default)]
    dkim: Option<RawDkim>,
    #[serde(default)]
    bounce_address: Option<Spanned<String>>,
}

fn default_transport() -> Spanned<String> {
    Spanned::new(0..0, "outbox".to_string())
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: String,
    selector: String,
    private_key_path: PathBuf,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: DkimAlgorithm,
}

fn default_dkim_algorithm() -> DkimAlgorithm {
    DkimAlgorithm::Rsa
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: String,
    description: String,
    base_url: Spanned<String>,
    author: Author,
    #[serde(default)]
    language: Option<Spanned<String>>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrack {
    slug: Spanned<String>,
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBuild {
    content_dir: PathBuf,
    output_dir: PathBuf,
    templates_dir: PathBuf,
    database: String,
    preview_dir: PathBuf,
    highlight_code: bool,
    math: bool,
}

impl Default for RawBuild {
    fn default() -> Self {
        RawBuild {
            content_dir: "content".into(),
            output_dir: "public".into(),
            templates_dir: "templates".into(),
            database: "data/shorts.db".into(),
            preview_dir: "preview".into(),
            highlight_code: true,
            math: true,
        }
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Problems(vec![Problem::new(path, None, unreadable(path, &e))]))?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Config::parse(&text, &path)
    }

    /// Validates `text` as the config file at `path`, collecting every problem
    /// that can be found once the file parses.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Problems> {
        let as_problems = |mistakes: Vec<document::Mistake>| {
            let problems = mistakes.into_iter();
            Problems(
                problems
                    .map(|m| Problem::new(path, m.line, m.message))
                    .collect(),
            )
        };
        let parsed = document::deserialize::<RawConfig>(text).map_err(as_problems)?;
        let raw = parsed.value;
        // The values are checked even after mistakes in the document, so
        // that one run shows everything.
        let mut check = Checker {
            path,
            text,
            keys: parsed.keys,
            problems: as_problems(parsed.mistakes),
        };
        let site = check.site(raw.site);
        let tracks = validate_tracks(&raw.tracks, path, text, &mut check.problems);
        let feeds = check.feeds(raw.feeds);
        let root = path.parent().unwrap_or(Path::new("."));
        let digest = raw.digest.and_then(|d| check.digest(d, &site));
        let delivery = check.delivery(raw.delivery, root);
        check.server(&raw.server);
        let inbound = check.inbound(raw.inbound, root);
        let database = check.database(&raw.build.database, root);
        if !check.problems.is_empty() {
            return Err(check.problems.sorted());
        }
        Ok(Config {
            path: path.to_path_buf(),
            site,
            tracks,
            feeds,
            content_dir: root.join(raw.build.content_dir),
            output_dir: root.join(raw.build.output_dir),
            templates_dir: root.join(raw.build.templates_dir),
            data_dir: match &database {
                Location::File(path) => path.parent().unwrap_or(root).to_path_buf(),
                Location::Postgres(_) => root.join("data"),
            },
            database,
            preview_dir: root.join(raw.build.preview_dir),
            highlight_code: raw.build.highlight_code,
            math: raw.build.math,
            digest,
            delivery,
            server: raw.server,
            pages: raw.pages,
            inbound,
        })
    }

    /// The folder of the database, the signing key and the run lock.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where `shorts inbound` keeps messages from standard input it did not act on.
    pub fn inbound_keep_dir(&self) -> PathBuf {
        match &self.inbound.keep_dir {
            Some(dir) => dir.clone(),
            None => self.data_dir().join("inbound"),
        }
    }

    /// The folder holding `<slug>.md` files.
    pub fn shorts_dir(&self) -> PathBuf {
        self.content_dir.join("shorts")
    }

    pub fn track(&self, slug: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.slug == slug)
    }
}

/// toml's message without its own rendering of the source, which we replace
/// by `path:line`; a missing key also names the table it is missing from.
/// Why the config file could not be read, and what to run instead.
fn unreadable(path: &Path, e: &std::io::Error) -> String {
    let tried = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if path.is_dir() {
        let inside = path.join("config.toml");
        let hint = if inside.is_file() {
            format!("; did you mean --config {}?", inside.display())
        } else {
            String::new()
        };
        return format!("is a folder; --config takes the config file itself{hint}");
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no config file (looked for {}); run `shorts init` to start a site here, \
             or pass --config with the path of a site's config.toml",
            tried.display()
        ),
        _ => format!("cannot read the config file: {e}"),
    }
}

const SCHEDULE_SHAPE: &str = "five fields, minute hour day-of-month month day-of-week, \
    in site.timezone, like \"0 8 * * MON\" (Mondays at 08:00) or \"30 7 * * *\" (every day at 07:30)";

/// Each field of a schedule and the values it takes.
const SCHEDULE_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
];

/// What is wrong with a schedule the cron library refused, in the
/// writer's terms: which field, and what it takes (its own words name
/// its internals).
fn schedule_problem(text: &str) -> String {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != SCHEDULE_FIELDS.len() {
        return format!(
            "{text:?} has {} field{}; a schedule has {SCHEDULE_SHAPE}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        );
    }
    for (i, (name, values)) in SCHEDULE_FIELDS.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = fields[i];
        if probe.join(" ").parse::<croner::Cron>().is_err() {
            return format!(
                "{text:?}: the {name} field {:?} is not valid; it takes {values}, `*`, \
                 lists (1,15), ranges (1-5) and steps (*/2)",
                fields[i]
            );
        }
    }
    format!("{text:?} is not a schedule; expected {SCHEDULE_SHAPE}")
}

/// Tera's error and its causes on one line.
pub fn tera_message(e: &tera::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string().replace('\n', " "));
        source = cause.source();
    }
    message
}

/// Checks an address for `serve` to listen on: `HOST:PORT`, with an IPv6
/// host in brackets. A bare port such as `8081` is the usual mistake.
pub fn check_bind(text: &str) -> Result<(), String> {
    let expected = "expected HOST:PORT, such as 127.0.0.1:8080, localhost:8080 or [::1]:8080";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} has no port; {expected}"));
    };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) || port.parse::<u16>().is_err() {
        return Err(format!(
            "{text:?} is not an address to listen on; {expected}"
        ));
    }
    Ok(())
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let expected =
        "`site.base_url` must be an absolute http(s) URL such as \"https://example.com/\"";
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("{expected}: {raw:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{expected}: {raw:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{expected}, without a query or fragment: {raw:?}"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `hub` as a WebSub hub's address in its normal form, or why it cannot
/// be one; `earlier` are the hubs listed before it, in that form.
fn hub_url(hub: &str, earlier: &[String]) -> Result<String, String> {
    let expected = "expected an absolute http(s) URL such as \"https://pubsubhubbub.appspot.com/\"";
    let url = Url::parse(hub).map_err(|e| format!("{hub:?} is not a URL ({e}); {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{hub:?}: {expected}"));
    }
    if url.fragment().is_some() {
        return Err(format!("{hub:?} has a fragment; {expected}"));
    }
    if earlier.iter().any(|e| e == url.as_str()) {
        return Err(format!("{hub:?} is listed twice"));
    }
    Ok(url.into())
}

/// Collects the problems of one config file, each at its line.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    keys: document::KeyLines,
    problems: Problems,
}

impl Checker<'_> {
    /// The line of a value's span.
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        line_of_offset(self.text, span.start)
    }

    /// The line of a value, or of its table when the value is a default (empty span).
    fn line_or(&self, span: std::ops::Range<usize>, table_line: usize) -> usize {
        if span.is_empty() {
            table_line
        } else {
            self.line(span)
        }
    }

    fn problem(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.problems.push(Problem::new(self.path, line, message));
    }

    fn site(&mut self, raw: RawSite) -> Site {
        let base_url = parse_base_url(raw.base_url.get_ref()).unwrap_or_else(|message| {
            self.problem(Some(self.line(raw.base_url.span())), message);
            Url::parse("http://invalid.invalid/").expect("a constant URL parses")
        });
        let timezone = raw
            .timezone
            .as_ref()
            .map_or(Tz::UTC, |tz| self.timezone(tz));
        let language = raw
            .language
            .as_ref()
            .map_or_else(|| "en".to_string(), |l| self.language(l));
        Site {
            title: raw.title,
            description: raw.description,
            base_url,
            author: raw.author,
            language,
            timezone,
        }
    }

    fn timezone(&mut self, tz: &Spanned<String>) -> Tz {
        tz.get_ref().parse::<Tz>().unwrap_or_else(|_| {
            self.problem(
                Some(self.line(tz.span())),
                format!(
                    "`site.timezone`: unknown time zone {:?}; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"",
                    tz.get_ref()
                ),
            );
            Tz::UTC
        })
    }

    fn language(&mut self, lang: &Spanned<String>) -> String {
        if !is_language_tag(lang.get_ref()) {
            self.problem(
                Some(self.line(lang.span())),
                format!(
                    "`site.language`: {:?} is not a language tag; expected e.g. \"en\" or \"en-GB\"",
                    lang.get_ref()
                ),
            );
        }
        lang.get_ref().clone()
    }

    fn feeds(&mut self, raw: Option<Spanned<FeedsConfig>>) -> FeedsConfig {
        let (feeds_line, feeds) = match raw {
            Some(feeds) => (Some(self.line(feeds.span())), feeds.into_inner()),
            None => (None, FeedsConfig::default()),
        };
        for (key, template) in feeds.templates() {
            if let Err(e) = tera::Tera::default().add_raw_template(key, template) {
                self.problem(
                    feeds_line,
                    format!(
                        "`feeds.{key}` is not a valid Tera template: {}",
                        tera_message(&e)
                    ),
                );
            }
        }
        let mut hubs = Vec::with_capacity(feeds.websub_hubs.len());
        for hub in &feeds.websub_hubs {
            match hub_url(hub, &hubs) {
                Ok(url) => hubs.push(url),
                Err(message) => self.problem(feeds_line, format!("`feeds.websub_hubs`: {message}")),
            }
        }
        FeedsConfig {
            websub_hubs: hubs,
            ..feeds
        }
    }

    /// `[digest]`, or `None` with its problems recorded.
    fn digest(&mut self, raw: Spanned<RawDigest>, site: &Site) -> Option<DigestConfig> {
        let before = self.problems.len();
        let digest_line = self.line(raw.span());
        let raw = raw.into_inner();
        let schedule = self.schedule("digest.schedule", &raw.schedule);
        let from = self.mailbox("from", &raw.from);
        let reply_to = raw
            .reply_to
            .as_ref()
            .and_then(|r| self.mailbox("reply_to", r));
        let unsubscribe_mailto = raw
            .unsubscribe_mailto
            .as_ref()
            .and_then(|u| self.mailbox("unsubscribe_mailto", u));
        self.subject(&raw.subject, digest_line);
        let cadences = schedule
            .clone()
            .map(|schedule| self.cadences(&raw, schedule, digest_line));
        if raw.postal_address.trim().is_empty() {
            self.problem(
                Some(digest_line),
                "`digest.postal_address` is empty; the law in many countries (CAN-SPAM) requires it in every email",
            );
        }
        if self.problems.len() > before {
            return None;
        }
        let from = from?;
        Some(DigestConfig {
            schedule: schedule?,
            schedule_text: raw.schedule.into_inner(),
            unsubscribe_mailto: unsubscribe_mailto.map_or_else(|| from.email.clone(), |m| m.email),
            reply_to,
            from,
            subject: raw.subject.into_inner(),
            grace: chrono::Duration::hours(i64::from(raw.grace_hours)),
            postal_address: raw.postal_address.trim().to_string(),
            list_id: raw.list_id.unwrap_or_else(|| default_list_id(site)),
            cadences: cadences?,
        })
    }

    /// The default cadence and each of `[[digest.cadences]]`, each name a
    /// lowercase word given once.
    fn cadences(
        &mut self,
        raw: &RawDigest,
        schedule: croner::Cron,
        digest_line: usize,
    ) -> Vec<Cadence> {
        let default_name = raw.cadence.get_ref().trim().to_string();
        if let Err(message) = cadence_name(&default_name, &[]) {
            let line = self.line_or(raw.cadence.span(), digest_line);
            self.problem(Some(line), format!("`digest.cadence`: {message}"));
        }
        let mut cadences = vec![Cadence {
            key: String::new(),
            label: raw.label.clone().unwrap_or_else(|| label_of(&default_name)),
            name: default_name,
            when: When::Cron {
                schedule: Box::new(schedule),
                text: raw.schedule.get_ref().clone(),
            },
            subject: raw.subject.get_ref().clone(),
        }];
        for other in &raw.cadences {
            let line = self.line(other.span());
            let other = other.get_ref();
            let name = other.name.get_ref().trim().to_string();
            let taken: Vec<&str> = cadences.iter().map(|c| c.name.as_str()).collect();
            if let Err(message) = cadence_name(&name, &taken) {
                self.problem(Some(line), format!("`digest.cadences` name: {message}"));
                continue;
            }
            let when = match other.schedule.get_ref().trim() {
                "instant" => Some(When::Instant),
                text => self
                    .schedule("digest.cadences.schedule", &other.schedule)
                    .map(|schedule| When::Cron {
                        schedule: Box::new(schedule),
                        text: text.to_string(),
                    }),
            };
            if let Some(subject) = &other.subject {
                self.subject(subject, line);
            }
            cadences.extend(when.map(|when| Cadence {
                key: name.clone(),
                label: other.label.clone().unwrap_or_else(|| label_of(&name)),
                name,
                when,
                subject: match (&other.subject, raw.subject.get_ref().as_str()) {
                    (Some(own), _) => own.get_ref().clone(),
                    (None, DEFAULT_SUBJECT) => DEFAULT_CADENCE_SUBJECT.to_string(),
                    (None, shared) => shared.to_string(),
                },
            }));
        }
        cadences
    }

    fn schedule(&mut self, key: &str, schedule: &Spanned<String>) -> Option<croner::Cron> {
        schedule
            .get_ref()
            .parse::<croner::Cron>()
            .map_err(|_| {
                let message = schedule_problem(schedule.get_ref());
                self.problem(
                    Some(self.line(schedule.span())),
                    format!("`{key}`: {message}"),
                )
            })
            .ok()
    }

    fn mailbox(&mut self, key: &str, value: &Spanned<String>) -> Option<lettre::message::Mailbox> {
        value
            .get_ref()
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| {
                self.problem(
                    Some(self.line(value.span())),
                    format!(
                        "`digest.{key}`: {:?} is not an email address ({e}); expected \"Name <name@example.org>\" or \"name@example.org\"",
                        value.get_ref()
                    ),
                )
            })
            .ok()
    }

    fn subject(&mut self, subject: &Spanned<String>, digest_line: usize) {
        if let Err(e) = tera::Tera::default().add_raw_template("subject", subject.get_ref()) {
            let line = self.line_or(subject.span(), digest_line);
            self.problem(
                Some(line),
                format!(
                    "`digest.subject` is not a valid Tera template: {}",
                    tera_message(&e)
                ),
            );
        }
    }

    /// `[server]`: an address to listen on, and counts of at least 1.
    fn server(&mut self, raw: &ServerConfig) {
        if let Err(message) = check_bind(&raw.bind) {
            let line = self.key_line("server.bind");
            self.problem(line, format!("`server.bind`: {message}"));
        }
        if let Some(Err(message)) = raw
            .metrics_bind
            .as_deref()
            .filter(|bind| !bind.is_empty())
            .map(check_bind)
        {
            let line = self.key_line("server.metrics_bind");
            self.problem(
                line,
                format!("`server.metrics_bind`: {message}, or \"\" for no metrics"),
            );
        }
        for (key, value) in [
            ("confirmations_per_address", raw.confirmations_per_address),
            ("pending_expiry_days", raw.pending_expiry_days),
        ] {
            if value == 0 {
                let line = self.key_line(&format!("server.{key}"));
                self.problem(line, format!("`server.{key}` must be at least 1"));
            }
        }
        for (key, value) in [
            ("cache_control", &raw.cache_control),
            ("content_security_policy", &raw.content_security_policy),
        ] {
            // Sent as a header as it is: a line break would end it.
            if !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
                let line = self.key_line(&format!("server.{key}"));
                self.problem(
                    line,
                    format!(
                        "`server.{key}` must be one line of printable ASCII (it is sent as an HTTP header)"
                    ),
                );
            }
        }
    }

    /// `[inbound]`: counts must be at least 1; the keep folder is relative to the config.
    /// `[build] database`, or the URL in [`DATABASE_URL_ENV`] when set.
    fn database(&mut self, value: &str, root: &Path) -> Location {
        let from_env = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty());
        let (value, line) = match &from_env {
            Some(url) => (url.as_str(), None),
            None => (value, self.key_line("build.database")),
        };
        let location = Location::parse(value, root);
        if let Err(why) = location.check() {
            let named = match from_env {
                Some(_) => DATABASE_URL_ENV.to_string(),
                None => "`build.database`".to_string(),
            };
            self.problem(line, format!("{named}: {why}"));
        }
        location
    }

    fn inbound(&mut self, mut raw: InboundConfig, root: &Path) -> InboundConfig {
        for (key, value) in [
            ("soft_bounce_limit", raw.soft_bounce_limit),
            ("soft_bounce_days", raw.soft_bounce_days),
            ("expire_days", raw.expire_days),
        ] {
            if value == 0 {
                let line = self.key_line(&format!("inbound.{key}"));
                self.problem(line, format!("`inbound.{key}` must be at least 1"));
            }
        }
        raw.keep_dir = raw.keep_dir.map(|dir| root.join(dir));
        self.webhooks(&raw.webhooks);
        raw
    }

    /// `[inbound.webhooks]`: an environment variable's name, and SNS topic ARNs.
    fn webhooks(&mut self, raw: &WebhooksConfig) {
        if let Some(name) = &raw.postmark_token_env {
            let is_name = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                let line = self.key_line("inbound.webhooks.postmark_token_env");
                self.problem(
                    line,
                    format!("`inbound.webhooks.postmark_token_env` {name:?} is not the name of an environment variable (letters, digits and `_`); it names the variable that holds the password, not the password"),
                );
            }
        }
        for arn in &raw.sns_topic_arns {
            if !is_sns_topic_arn(arn) {
                let line = self.key_line("inbound.webhooks.sns_topic_arns");
                self.problem(
                    line,
                    format!("`inbound.webhooks.sns_topic_arns`: {arn:?} is not an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:ses-bounces\""),
                );
            }
        }
    }

    /// The line of the key `name` (`server.bind`), for a value without a
    /// span of its own; `None` when it is a default.
    fn key_line(&self, name: &str) -> Option<usize> {
        self.keys.line(name)
    }

    fn delivery(&mut self, raw: Option<Spanned<RawDelivery>>, root: &Path) -> DeliveryConfig {
        let Some(raw) = raw else {
            return DeliveryConfig {
                transport: Transport::Outbox,
                outbox_dir: root.join("outbox"),
                dkim: None,
                bounce_address: None,
            };
        };
        let delivery_line = self.line(raw.span());
        let raw = raw.into_inner();
        let transport_line = self.line_or(raw.transport.span(), delivery_line);
        let transport = match (raw.transport.get_ref().as_str(), raw.smtp) {
            ("outbox", _) => Transport::Outbox,
            ("smtp", Some(mut smtp)) => {
                smtp.ca_file = smtp.ca_file.map(|file| root.join(file));
                self.smtp(&smtp, delivery_line);
                Transport::Smtp(smtp)
            }
            // A [delivery.smtp] that is there but wrong has its own problem.
            ("smtp", None) if self.key_line("delivery.smtp").is_some() => Transport::Outbox,
            ("smtp", None) => {
                self.problem(
                    Some(transport_line),
                    "`delivery.transport = \"smtp\"` needs a [delivery.smtp] table with at least `host`",
                );
                Transport::Outbox
            }
            (other, _) => {
                self.problem(
                    Some(transport_line),
                    format!("`delivery.transport`: unknown transport {other:?}; expected \"outbox\" or \"smtp\""),
                );
                Transport::Outbox
            }
        };
        let bounce_address = raw
            .bounce_address
            .as_ref()
            .and_then(|a| self.bounce_address(a));
        DeliveryConfig {
            transport,
            bounce_address,
            outbox_dir: root.join(raw.outbox_dir),
            dkim: raw.dkim.map(|d| DkimConfig {
                domain: d.domain,
                selector: d.selector,
                private_key_path: root.join(d.private_key_path),
                algorithm: d.algorithm,
            }),
        }
    }

    /// `[delivery] bounce_address`: a plain address that VERP can extend with `+token`.
    fn bounce_address(&mut self, value: &Spanned<String>) -> Option<lettre::Address> {
        let line = Some(self.line(value.span()));
        let expected = "expected a plain address such as \"bounces@example.org\", without a `+`";
        match value.get_ref().trim().parse::<lettre::Address>() {
            Ok(address) if !address.user().contains('+') => Some(address),
            Ok(_) => {
                self.problem(
                    line,
                    format!(
                        "`delivery.bounce_address` {:?} has a `+`; {expected}",
                        value.get_ref()
                    ),
                );
                None
            }
            Err(e) => {
                self.problem(
                    line,
                    format!(
                        "`delivery.bounce_address` {:?} is not an email address ({e}); {expected}",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn smtp(&mut self, smtp: &SmtpConfig, line: usize) {
        if smtp.tls == Tls::None && !smtp.is_loopback() {
            let tls_line = self.key_line("delivery.smtp.tls").unwrap_or(line);
            self.problem(
                Some(tls_line),
                format!(
                    "`delivery.smtp.tls = \"none\"` is only allowed to a loopback host, not {:?}; use \"starttls\" or \"tls\"",
                    smtp.host
                ),
            );
        }
        if smtp.username.is_some() != smtp.password_env.is_some() {
            let set = ["delivery.smtp.username", "delivery.smtp.password_env"];
            let line = set
                .iter()
                .find_map(|key| self.key_line(key))
                .unwrap_or(line);
            self.problem(
                Some(line),
                "`delivery.smtp`: set both `username` and `password_env` (the name of the environment variable holding the password), or neither",
            );
        }
        if smtp.pool_size == 0 || smtp.attempts == 0 || smtp.rate_limit < 0.0 {
            self.problem(
                Some(line),
                "`delivery.smtp`: `pool_size` and `attempts` must be at least 1 and `rate_limit` not negative",
            );
        }
        if let Some(file) = &smtp.ca_file
            && let Err(message) = crate::delivery::trust::read_ca_file(file)
        {
            let line = self.key_line("delivery.smtp.ca_file").or(Some(line));
            self.problem(line, format!("`delivery.smtp.ca_file`: {message}"));
        }
    }
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`.
fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let topic = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    parts.len() == 6
        && parts[0] == "arn"
        && word(parts[1])
        && parts[2] == "sns"
        && word(parts[3])
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && topic(parts[5])
}

/// `List-Id` when `[digest] list_id` is not set: the site's title at `digest.<host>`.
fn default_list_id(site: &Site) -> String {
    let host = site.base_url.host_str().unwrap_or("localhost");
    format!(
        "{} <digest.{host}>",
        site.title.replace(['<', '>', '"'], "")
    )
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn validate_tracks(
    raw: &[RawTrack],
    path: &Path,
    text: &str,
    problems: &mut Problems,
) -> Vec<Track> {
    if raw.is_empty() {
        problems.push(Problem::new(
            path,
            None,
            "no tracks defined; add at least one [[tracks]] table with `slug` and `title`",
        ));
    }
    let mut tracks: Vec<Track> = Vec::with_capacity(raw.len());
    for track in raw {
        let slug = track.slug.get_ref();
        let line = line_of_offset(text, track.slug.span().start);
        if !is_slug(slug) {
            problems.push(Problem::at(
                path,
                line,
                format!("`tracks.slug`: {slug:?} is not a slug; expected lower-case letters, digits and single hyphens, like \"time-series\""),
            ));
        } else if tracks.iter().any(|t| &t.slug == slug) {
            problems.push(Problem::at(
                path,
                line,
                format!("`tracks.slug`: track {slug:?} is defined twice"),
            ));
        }
        tracks.push(Track {
            slug: slug.clone(),
            title: track.title.clone(),
            description: track.description.clone(),
        });
    }
    tracks
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[site]
title = "T"
description = "D"
base_url = "https://example.com/blog"
author = { name = "A" }

[[tracks]]
slug = "llm"
title = "LLMs"
"#;

    fn parse(text: &str) -> Result<Config, Problems> {
        Config::parse(text, Path::new("/site/config.toml"))
    }

    fn messages(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.site.base_url.as_str(), "https://example.com/blog/");
        assert_eq!(config.site.timezone, Tz::UTC);
        assert_eq!(config.site.language, "en");
        assert_eq!(config.feeds, FeedsConfig::default());
        assert_eq!(config.content_dir, Path::new("/site/content"));
        assert_eq!(config.output_dir, Path::new("/site/public"));
        assert_eq!(config.shorts_dir(), Path::new("/site/content/shorts"));
    }

    #[test]
    fn sign_up_limits_default_and_must_be_at_least_1() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.server.confirmations_per_address, 3);
        assert_eq!(config.server.pending_expiry_days, 7);
        let text = format!(
            "{MINIMAL}\n[server]\nconfirmations_per_address = 0\npending_expiry_days = 0\n"
        );
        assert_eq!(
            messages(&text),
            [
                "/site/config.toml:13: `server.confirmations_per_address` must be at least 1",
                "/site/config.toml:14: `server.pending_expiry_days` must be at least 1",
            ]
        );
    }

    #[test]
    fn header_values_must_be_one_printable_line() {
        let text = format!(
            "{MINIMAL}\n[server]\ncache_control = \"public\\r\\nX-Evil: 1\"\ncontent_security_policy = \"default-src 'self'\"\n"
        );
        assert_eq!(
            messages(&text),
            [
                "/site/config.toml:13: `server.cache_control` must be one line of printable ASCII (it is sent as an HTTP header)"
            ]
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("title = \"T\"", "title = \"T\"\ncolour = \"red\"");
        assert_eq!(
            messages(&text),
            [
                "/site/config.toml:4: unknown key `site.colour`; expected one of: title, description, base_url, author, language, timezone"
            ]
        );
    }

    #[test]
    fn missing_required_key_is_named() {
        let text = MINIMAL.replace("base_url = \"https://example.com/blog\"\n", "");
        let got = messages(&text);
        assert_eq!(
            got,
            ["/site/config.toml:2: missing required key `base_url` in [site]"]
        );
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = MINIMAL
            .replace("https://example.com/blog", "example.com")
            .replace(
                "title = \"T\"",
                "title = \"T\"\ntimezone = \"Mars/Olympus\"\nlanguage = \"english!\"",
            )
            .replace("slug = \"llm\"", "slug = \"LLM s\"");
        let got = messages(&text);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got.iter().any(|m| m.contains(":7: `site.base_url`")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.contains(":4: `site.timezone`")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.contains(":5: `site.language`")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.contains(":11: `tracks.slug`")),
            "{got:?}"
        );
    }

    #[test]
    fn duplicate_track_and_bad_template_are_reported() {
        let text = format!(
            "{MINIMAL}\n[[tracks]]\nslug = \"llm\"\ntitle = \"Again\"\n[feeds]\ntitle = \"{{{{ site.title \"\n"
        );
        let got = messages(&text);
        assert!(
            got.iter()
                .any(|m| m.contains("track \"llm\" is defined twice")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.contains("`feeds.title` is not a valid Tera template")),
            "{got:?}"
        );
    }

    #[test]
    fn websub_hubs_must_be_absolute_http_urls_each_listed_once() {
        let text = |hubs: &str| format!("{MINIMAL}\n[feeds]\nwebsub_hubs = {hubs}\n");
        let good = r#"["https://pubsubhubbub.appspot.com/", "http://127.0.0.1:8090/hub"]"#;
        assert_eq!(parse(&text(good)).unwrap().feeds.websub_hubs.len(), 2);
        let with = |hubs: &str| messages(&text(hubs));
        let bad = [
            ("[\"hub.example\"]", "\"hub.example\" is not a URL"),
            (
                "[\"ftp://hub.example/\"]",
                "\"ftp://hub.example/\": expected an absolute http(s) URL",
            ),
            ("[\"https://hub.example/#x\"]", "has a fragment"),
            (
                "[\"https://h.example/\", \"https://h.example/\"]",
                "is listed twice",
            ),
        ];
        for (hubs, expected) in bad {
            let got = with(hubs);
            assert!(
                got.len() == 1
                    && got[0].contains("`feeds.websub_hubs`: ")
                    && got[0].contains(expected),
                "{hubs}: {got:?}"
            );
        }
    }
    #[test]
    fn a_bounce_address_must_be_a_plain_address() {
        let path = Path::new("/site/config.toml");
        let with = |value: &str| format!("{MINIMAL}\n[delivery]\nbounce_address = {value:?}\n");
        let config = Config::parse(&with("bounces@example.org"), path).unwrap();
        assert_eq!(
            config.delivery.bounce_address.map(|a| a.to_string()),
            Some("bounces@example.org".to_string())
        );
        for (bad, says) in [
            ("bounces+x@example.org", "has a `+`"),
            ("not an address", "is not an email address"),
        ] {
            let problems = Config::parse(&with(bad), path).unwrap_err();
            let message = &problems.0[0].message;
            assert!(message.contains(says), "{bad}: {message}");
            assert_eq!(problems.0[0].line, Some(13), "{bad}: {message}");
        }
    }

    #[test]
    fn webhooks_name_an_environment_variable_and_sns_topics() {
        let path = Path::new("/site/config.toml");
        let with = |body: &str| format!("{MINIMAL}\n[inbound.webhooks]\n{body}\n");
        let config = Config::parse(
            &with("postmark_token_env = \"SHORTS_POSTMARK\"\nsns_topic_arns = [\"arn:aws:sns:us-west-2:123456789012:ses-bounces\"]"),
            path,
        )
        .unwrap();
        let webhooks = &config.inbound.webhooks;
        assert_eq!(
            webhooks.postmark_token_env.as_deref(),
            Some("SHORTS_POSTMARK")
        );
        assert_eq!(webhooks.sns_topic_arns.len(), 1);
        let problems = Config::parse(
            &with("postmark_token_env = \"s3cr3t pass\"\nsns_topic_arns = [\"my-topic\"]"),
            path,
        )
        .unwrap_err();
        let messages: Vec<_> = problems
            .0
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert!(
            messages[0]
                .1
                .contains("not the name of an environment variable"),
            "{messages:?}"
        );
        assert!(
            messages[1]
                .1
                .contains("\"my-topic\" is not an SNS topic ARN"),
            "{messages:?}"
        );
        assert_eq!(
            (messages[0].0, messages[1].0),
            (Some(13), Some(14)),
            "{messages:?}"
        );
    }

    #[test]
    fn a_ca_file_is_relative_to_the_config_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!(
            "{MINIMAL}\n[delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"relay.example.org\"\nca_file = \"relay-ca.pem\"\n"
        );
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
        std::fs::copy(ca, dir.path().join("relay-ca.pem")).unwrap();
        let config = Config::parse(&text, &path).unwrap();
        let Transport::Smtp(smtp) = config.delivery.transport else {
            panic!("smtp is configured");
        };
        assert_eq!(smtp.ca_file, Some(dir.path().join("relay-ca.pem")));
        assert_eq!(smtp.max_consecutive_failures, 10);

        std::fs::write(dir.path().join("relay-ca.pem"), "not a certificate\n").unwrap();
        let problems = Config::parse(&text, &path).unwrap_err();
        let message = &problems.0[0].message;
        assert!(
            message.starts_with("`delivery.smtp.ca_file`: ")
                && message.contains("relay-ca.pem holds no certificate"),
            "{message}"
        );
        assert_eq!(problems.0[0].line, Some(16), "{message}");
    }
}
