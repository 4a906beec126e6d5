//! Telling WebSub hubs (W3C WebSub; `[feeds] websub_hubs`) which
//! subscription feeds changed, so that readers subscribed through a hub get
//! each change pushed instead of polling for it.
//!
//! A build records the feeds whose bytes it changed in
//! `websub-pending.tsv` in the data folder, before it switches the site
//! live, so that a crash between the switch and the pings loses none.
//! `publish` and `schedule` then send every hub one publish ping per
//! changed feed (`hub.mode=publish`, the feed's URL as both `hub.url` and
//! `hub.topic`, the two names hubs read), retry a ping that failed for now,
//! and strike from the record what each hub took. What a hub did not take
//! stays for the next run; a hub that refused a ping outright (a 4xx, or a
//! redirect) is not asked again for that feed.
//!
//! Owns the record and the pings. It must not decide what changed (the
//! output folder knows what it wrote) and never fails a build or a send: a
//! hub that is down is a warning.

use std::collections::{BTreeSet, VecDeque};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use url::Url;

use crate::config::Config;
use crate::http_client::{Answer, FetchError, HttpClient};
use crate::render::feeds;

/// The record's file name, in the data folder.
const PENDING_FILE: &str = "websub-pending.tsv";
/// Attempts at one ping within a run, and the waits between them.
const ATTEMPTS: u32 = 3;
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// Pings in flight to one hub at a time.
const AT_ONCE: usize = 8;
/// The longest `Retry-After` waited for within a run; a hub asking for
/// more is asked again by the next run.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// The pings still owed: (hub, feed URL) pairs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pending(BTreeSet<(String, String)>);

impl Pending {
    fn path(config: &Config) -> PathBuf {
        config.data_dir().join(PENDING_FILE)
    }

    /// The record, or nothing owed when there is none; a line that is not
    /// `hub<TAB>feed` (a hand edit) is dropped.
    fn load(path: &Path) -> std::io::Result<Pending> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Pending::default()),
            Err(e) => return Err(e),
        };
        let pairs = text.lines().filter_map(|line| {
            let (hub, feed) = line.split_once('\t')?;
            Some((hub.to_string(), feed.to_string()))
        });
        Ok(Pending(pairs.collect()))
    }

    /// Writes the record whole (private, like the rest of the data folder),
    /// so a crash leaves the old record or the new one; none when nothing
    /// is owed.
    fn save(&self, path: &Path) -> std::io::Result<()> {
        if self.0.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let text: String = self
            .0
            .iter()
            .map(|(hub, feed)| format!("{hub}\t{feed}\n"))
            .collect();
        // Synced: a record lost to a power cut would lose its pings.
        crate::private::replace_file(path, |mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
    }
}

/// Records that the files at `changed` (below the site root) are about to
/// go live, so every configured hub is told of the subscription feeds among
/// them. Nothing is recorded without hubs.
pub fn record_changed(config: &Config, changed: &[String]) -> Result<usize, RecordError> {
    let hubs = &config.feeds.websub_hubs;
    let feeds: Vec<String> = changed
        .iter()
        .filter(|path| feeds::is_subscription_feed(path))
        .map(|path| config.site.url(path))
        .collect();
    if hubs.is_empty() || feeds.is_empty() {
        return Ok(0);
    }
    let path = Pending::path(config);
    let failed = |source| RecordError {
        path: path.clone(),
        source,
    };
    let mut pending = Pending::load(&path).map_err(failed)?;
    for hub in hubs {
        pending
            .0
            .extend(feeds.iter().map(|feed| (hub.clone(), feed.clone())));
    }
    pending.save(&path).map_err(failed)?;
    Ok(feeds.len())
}

#[derive(Debug, thiserror::Error)]
#[error("recording which feeds to tell the WebSub hubs about in {path}: {source}")]
pub struct RecordError {
    path: PathBuf,
    source: std::io::Error,
}

/// The `Link` header value a subscription feed at `path` (below the site
/// root) is served with: each hub, then the feed's own URL (W3C WebSub §4).
/// `None` for any other file, or without hubs.
pub fn link_header(config: &Config, path: &str) -> Option<String> {
    let hubs = &config.feeds.websub_hubs;
    if hubs.is_empty() || !feeds::is_subscription_feed(path) {
        return None;
    }
    let mut links: Vec<String> = hubs
        .iter()
        .map(|hub| format!("<{hub}>; rel=\"hub\""))
        .collect();
    links.push(format!("<{}>; rel=\"self\"", config.site.url(path)));
    Some(links.join(", "))
}

/// What one round of pings did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Told {
    /// Pings a hub took.
    pub taken: usize,
    /// Pings a hub refused (a 4xx); they are not sent again.
    pub refused: usize,
    /// Pings left for the next run: the hub was down or busy.
    pub left: usize,
}

impl Told {
    /// Both rounds' pings together.
    pub fn sum(a: Option<Told>, b: Option<Told>) -> Option<Told> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Told {
                taken: a.taken + b.taken,
                refused: a.refused + b.refused,
                // The later round tried again what the earlier one left.
                left: b.left,
            }),
            (a, b) => a.or(b),
        }
    }

    /// Whether a hub still has to be told something.
    pub fn has_left(&self) -> bool {
        self.left > 0
    }
}

impl std::fmt::Display for Told {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pings = |n| crate::site::plural(n, "ping", "pings");
        write!(f, "WebSub: {} taken", pings(self.taken))?;
        if self.refused > 0 {
            write!(f, ", {} refused", self.refused)?;
        }
        if self.left > 0 {
            write!(f, ", {} left for the next run", self.left)?;
        }
        Ok(())
    }
}

/// Sends every ping owed to the hubs configured now (pings owed to a hub
/// no longer listed are dropped), and records what is still owed. `None`
/// when nothing was owed.
pub fn tell_hubs(config: &Config) -> Option<Told> {
    let path = Pending::path(config);
    let pending = match Pending::load(&path) {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(
                "WebSub: reading {}: {e}; no hub is told this run",
                path.display()
            );
            return None;
        }
    };
    let hubs = &config.feeds.websub_hubs;
    let owed: Vec<(String, String)> = pending
        .0
        .into_iter()
        .filter(|(hub, _)| hubs.contains(hub))
        .collect();
    if owed.is_empty() {
        if let Err(e) = Pending::default().save(&path) {
            tracing::warn!("WebSub: clearing {}: {e}", path.display());
        }
        return None;
    }
    let (told, still_owed) = ping_all(owed);
    if let Err(e) = still_owed.save(&path) {
        tracing::warn!(
            "WebSub: writing {}: {e}; its pings may be sent again",
            path.display()
        );
    }
    Some(told)
}

/// Pings each hub for each of its feeds in `owed`, on a runtime of its own;
/// what is left owed.
fn ping_all(owed: Vec<(String, String)>) -> (Told, Pending) {
    let everything_left = |owed: Vec<(String, String)>| {
        let told = Told {
            left: owed.len(),
            ..Told::default()
        };
        (told, Pending(owed.into_iter().collect()))
    };
    let client = match HttpClient::new(None, None) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            tracing::warn!("WebSub: no HTTP client: {e}");
            return everything_left(owed);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!("WebSub: no async runtime: {e}");
            return everything_left(owed);
        }
    };
    runtime.block_on(async {
        let mut told = Told::default();
        let mut left = Pending::default();
        for (hub, feeds) in by_hub(owed) {
            let outcome = tell_hub(&client, &hub, feeds).await;
            told.taken += outcome.taken;
            told.refused += outcome.refused;
            told.left += outcome.left.len();
            left.0
                .extend(outcome.left.into_iter().map(|feed| (hub.clone(), feed)));
        }
        (told, left)
    })
}

/// `owed` grouped by hub, in the record's order.
fn by_hub(owed: Vec<(String, String)>) -> Vec<(String, Vec<String>)> {
    let mut hubs: Vec<(String, Vec<String>)> = Vec::new();
    for (hub, feed) in owed {
        match hubs.last_mut() {
            Some((last, feeds)) if *last == hub => feeds.push(feed),
            _ => hubs.push((hub, vec![feed])),
        }
    }
    hubs
}

/// What one hub made of its pings, and the first ping it failed and why.
#[derive(Default)]
struct HubOutcome {
    taken: usize,
    refused: usize,
    left: Vec<String>,
    failed: Option<(String, String)>,
}

/// Pings `hub` for each of `feeds`, [`AT_ONCE`] at a time (a change to
/// the config or templates changes every feed, a thousand on a site with
/// many tags). Once a ping fails for now after its retries, the hub is
/// taken to be down: the pings not yet sent wait for the next run.
async fn tell_hub(client: &Arc<HttpClient>, hub: &str, feeds: Vec<String>) -> HubOutcome {
    let Ok(url) = Url::parse(hub) else {
        // Checked when the config was read; kept owed rather than lost.
        return HubOutcome {
            left: feeds,
            ..HubOutcome::default()
        };
    };
    let queue = Arc::new(Mutex::new(VecDeque::from(feeds)));
    let outcome = Arc::new(Mutex::new(HubOutcome::default()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..AT_ONCE {
        let (client, url) = (Arc::clone(client), url.clone());
        let (queue, outcome) = (Arc::clone(&queue), Arc::clone(&outcome));
        workers.spawn(async move { ping_from(&client, &url, &queue, &outcome).await });
    }
    while workers.join_next().await.is_some() {}
    let mut outcome = std::mem::take(&mut *lock(&outcome));
    outcome.left.extend(lock(&queue).drain(..));
    report(hub, &outcome);
    outcome
}

/// One of [`tell_hub`]'s workers: pings `hub` for the feeds it takes from
/// `queue` until the queue is empty or a ping fails for now.
async fn ping_from(
    client: &HttpClient,
    hub: &Url,
    queue: &Mutex<VecDeque<String>>,
    outcome: &Mutex<HubOutcome>,
) {
    loop {
        let Some(feed) = lock(queue).pop_front() else {
            return;
        };
        let ping = ping(client, hub, &feed).await;
        let mut outcome = lock(outcome);
        match ping {
            Ping::Taken => outcome.taken += 1,
            Ping::Refused(why) => {
                tracing::error!("WebSub hub {hub} refused the ping for {feed}: {why}");
                outcome.refused += 1;
            }
            Ping::Failed(why) => {
                outcome.failed.get_or_insert_with(|| (feed.clone(), why));
                outcome.left.push(feed);
                // The hub is down: the other workers stop too.
                outcome.left.extend(lock(queue).drain(..));
                return;
            }
        }
    }
}

/// The log lines for what one hub made of its pings.
fn report(hub: &str, outcome: &HubOutcome) {
    if outcome.taken > 0 {
        let feeds = crate::site::plural(outcome.taken, "changed feed", "changed feeds");
        tracing::info!("told WebSub hub {hub} of {feeds}");
    }
    if let Some((feed, why)) = &outcome.failed {
        let waiting = crate::site::plural(outcome.left.len(), "ping waits", "pings wait");
        tracing::warn!(
            "WebSub hub {hub} did not take the ping for {feed} ({why}); {waiting} for the next run"
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How one ping ended.
enum Ping {
    Taken,
    /// The hub said no (a 4xx other than 408 and 429), or sent us elsewhere:
    /// asking again would not help.
    Refused(String),
    /// No answer, or one that asks to try later.
    Failed(String),
}

/// Tells `hub` that `feed` changed, trying up to [`ATTEMPTS`] times while
/// it fails for now, waiting longer each time (or as long as the hub's
/// `Retry-After` asks, within reason). A hub that did not answer in time
/// is not asked again this run: waiting for it again would hold up the
/// digest behind it.
async fn ping(client: &HttpClient, hub: &Url, feed: &str) -> Ping {
    let mut wait = FIRST_WAIT;
    let mut attempt = 1;
    loop {
        let answer = client.post_form(hub, publish_form(feed)).await;
        let timed_out = matches!(answer, Err(FetchError::Timeout { .. }));
        let (ping, retry_after) = classify(answer);
        let why = match ping {
            Ping::Failed(why) => why,
            done => return done,
        };
        let too_long = retry_after.is_some_and(|after| after > LONGEST_WAIT);
        if attempt == ATTEMPTS || timed_out || too_long {
            return Ping::Failed(why);
        }
        tracing::debug!(hub = %hub, feed, attempt, "WebSub ping failed ({why}); trying again");
        tokio::time::sleep(retry_after.unwrap_or(wait)).await;
        wait *= 2;
        attempt += 1;
    }
}

/// The form of a publish ping for `feed`.
fn publish_form(feed: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("hub.mode", "publish")
        .append_pair("hub.url", feed)
        .append_pair("hub.topic", feed)
        .finish()
}

/// What an answer (or its absence) means for the ping, and how long the
/// hub asked to wait.
fn classify(answer: Result<Answer, FetchError>) -> (Ping, Option<Duration>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return (Ping::Failed(e.to_string()), None),
    };
    let status = answer.status;
    let said = match answer.text.is_empty() {
        true => status.to_string(),
        false => format!("{status}: {}", answer.text),
    };
    let later = [StatusCode::REQUEST_TIMEOUT, StatusCode::TOO_MANY_REQUESTS];
    let ping = if status.is_success() {
        Ping::Taken
    } else if status.is_redirection() {
        // A POST is not followed to another address: the config should name it.
        let to = answer.location.as_deref().unwrap_or("another address");
        Ping::Refused(format!(
            "{status}, to {to}; list that address in `feeds.websub_hubs`"
        ))
    } else if status.is_client_error() && !later.contains(&status) {
        Ping::Refused(said)
    } else {
        Ping::Failed(said)
    };
    (ping, answer.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>) -> Result<Answer, FetchError> {
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            location: None,
            text: String::new(),
        })
    }

    #[test]
    fn answers_are_taken_refused_or_left_for_later() {
        let kind = |a| match classify(a).0 {
            Ping::Taken => "taken",
            Ping::Refused(_) => "refused",
            Ping::Failed(_) => "later",
        };
        for (status, expected) in [
            (202, "taken"),
            (204, "taken"),
            (200, "taken"),
            (400, "refused"),
            (404, "refused"),
            (408, "later"),
            (429, "later"),
            (500, "later"),
            (503, "later"),
            (301, "refused"),
            (308, "refused"),
        ] {
            assert_eq!(kind(answer(status, None)), expected, "{status}");
        }
        let down = Err(FetchError::Timeout {
            url: "https://hub.example/".into(),
        });
        assert_eq!(kind(down), "later");
        assert_eq!(
            classify(answer(503, Some(120))).1,
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn the_ping_names_the_feed_as_both_hubs_read_it() {
        assert_eq!(
            publish_form("https://example.com/tags/a&b/atom.xml"),
            "hub.mode=publish&hub.url=https%3A%2F%2Fexample.com%2Ftags%2Fa%26b%2Fatom.xml&hub.topic=https%3A%2F%2Fexample.com%2Ftags%2Fa%26b%2Fatom.xml"
        );
    }

    #[test]
    fn the_record_survives_a_round_trip_and_drops_hand_made_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PENDING_FILE);
        assert_eq!(Pending::load(&path).unwrap(), Pending::default());
        let pending = Pending(BTreeSet::from([
            (
                "https://a.example/".to_string(),
                "https://s.example/atom.xml".to_string(),
            ),
            (
                "https://b.example/".to_string(),
                "https://s.example/rss.xml".to_string(),
            ),
        ]));
        pending.save(&path).unwrap();
        assert_eq!(Pending::load(&path).unwrap(), pending);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "private, like the rest of the data folder"
        );
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("no tab here\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(Pending::load(&path).unwrap(), pending);
        Pending::default().save(&path).unwrap();
        assert!(!path.exists(), "nothing owed, no record");
    }

    #[test]
    fn pings_are_grouped_by_hub() {
        let pair = |h: &str, f: &str| (h.to_string(), f.to_string());
        let owed = vec![pair("a", "1"), pair("a", "2"), pair("b", "1")];
        assert_eq!(
            by_hub(owed),
            vec![
                ("a".to_string(), vec!["1".to_string(), "2".to_string()]),
                ("b".to_string(), vec!["1".to_string()])
            ]
        );
    }
}
