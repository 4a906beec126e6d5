//! The pages `shorts serve` draws itself — confirm, unsubscribe, track
//! preferences, and every answer and error of the subscription endpoints —
//! from the templates `serve/*.html`, which extend the site's `base.html`
//! so they look like the rest of the site. Like every template, each is
//! replaced by a file of the same name in the site's `templates/` folder.
//!
//! Their links are relative to the page, as the built pages' are. The
//! site-wide part of their context (navigation, feeds, the stylesheet's
//! versioned path) is what the last build wrote to
//! `public/.shorts/page-context.json`, read again when a new build replaces
//! it. Owns that context and turning a page into HTML; what the pages say
//! yes or no to is the handlers'. A template that fails at request time
//! is logged and the page drawn plainly: a reader always gets an answer.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use axum::response::Html;
use serde::Serialize;
use tera::Context;

use crate::config::Config;
use crate::diagnostics::{Problem, Problems};
use crate::model::{Subscriber, SubscriberStatus, Tag};
use crate::paths;
use crate::render::escape_html;
use crate::render::pages::PageTemplates;

/// One page, with what its template shows.
pub enum Page<'a> {
    /// A sentence: an answer, or what went wrong (`status` 4xx/5xx).
    Message {
        status: u16,
        title: &'a str,
        message: &'a str,
    },
    /// The button that confirms a sign-up.
    Confirm { email: &'a str, token: &'a str },
    /// The button that unsubscribes, or a note that there is nothing to stop.
    Unsubscribe {
        subscriber: &'a Subscriber,
        token: &'a str,
        preferences_token: &'a str,
    },
    /// The tracks and tags a subscriber gets.
    Preferences {
        subscriber: &'a Subscriber,
        token: &'a str,
        unsubscribe_token: &'a str,
        /// The tags the site's shorts use.
        tags: &'a [Tag],
        notice: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct Choice<'a> {
    slug: &'a str,
    #[serde(rename = "title")]
    label: &'a str,
    name: &'a str,
    checked: bool,
}

impl Page<'_> {
    fn template(&self) -> &'static str {
        match self {
            Page::Message { .. } => "serve/message.html",
            Page::Confirm { .. } => "serve/confirm.html",
            Page::Unsubscribe { .. } => "serve/unsubscribe.html",
            Page::Preferences { .. } => "serve/preferences.html",
        }
    }

    fn title(&self) -> &str {
        match self {
            Page::Message { title, .. } => title,
            Page::Confirm { .. } => "Confirm your subscription",
            Page::Unsubscribe { .. } => "Unsubscribe",
            Page::Preferences { .. } => "Your tracks",
        }
    }

    /// The page's own variables, added to the site-wide ones. `root` leads
    /// from the page back to the site's root.
    fn add_to(&self, context: &mut Context, config: &Config, root: &str) {
        context.insert("title", self.title());
        context.insert("status", &200);
        match self {
            Page::Message {
                status, message, ..
            } => {
                context.insert("status", status);
                context.insert("message", &capitalised(message));
            }
            Page::Confirm { email, token } => {
                context.insert("email", email);
                context.insert("action", &format!("{root}{}", paths::confirm(token)));
            }
            Page::Unsubscribe {
                subscriber,
                token,
                preferences_token,
            } => {
                let subscribed = matches!(
                    subscriber.status,
                    SubscriberStatus::Active | SubscriberStatus::Pending
                );
                context.insert("email", &subscriber.email);
                context.insert("subscribed", &subscribed);
                context.insert("action", &format!("{root}{}", paths::unsubscribe(token)));
                context.insert(
                    "preferences",
                    &format!("{root}{}", paths::preferences(preferences_token)),
                );
            }
            Page::Preferences {
                subscriber,
                token,
                unsubscribe_token,
                tags,
                notice,
            } => {
                context.insert("email", &subscriber.email);
                context.insert("action", &format!("{root}{}", paths::preferences(token)));
                context.insert(
                    "unsubscribe",
                    &format!("{root}{}", paths::unsubscribe(unsubscribe_token)),
                );
                context.insert("tracks", &track_choices(config, subscriber));
                context.insert("tags", &tag_choices(tags, subscriber));
                context.insert("cadences", &cadence_choices(config, subscriber));
                context.insert("paused", &subscriber.paused);
                context.insert("notice", notice);
            }
        }
    }
}

fn track_choices<'a>(config: &'a Config, subscriber: &Subscriber) -> Vec<Choice<'a>> {
    config
        .tracks
        .iter()
        .map(|t| Choice {
            slug: &t.slug,
            label: &t.title,
            name: &t.title,
            checked: subscriber.wants(&t.slug),
        })
        .collect()
}

/// The cadences to choose between, the reader's ticked; none when the
/// config offers only one.
fn cadence_choices<'a>(config: &'a Config, subscriber: &Subscriber) -> Vec<Choice<'a>> {
    let Some(digest) = &config.digest else {
        return Vec::new();
    };
    let theirs = &digest.cadence_of(&subscriber.cadence).key;
    crate::render::pages::cadence_views(config)
        .into_iter()
        .zip(&digest.cadences)
        .map(|(view, cadence)| Choice {
            slug: view.name,
            label: view.label,
            name: view.name,
            checked: cadence.key == *theirs,
        })
        .collect()
}

/// The site's tags, and after them any tag the reader follows that no
/// short uses now (by its slug, still ticked, so saving keeps it).
fn tag_choices<'a>(site_tags: &'a [Tag], subscriber: &'a Subscriber) -> Vec<Choice<'a>> {
    let gone = subscriber
        .tags
        .iter()
        .filter(|slug| !site_tags.iter().any(|t| t.slug == **slug))
        .map(|slug| (slug.as_str(), slug.as_str()));
    site_tags
        .iter()
        .map(|t| (t.slug.as_str(), t.name.as_str()))
        .chain(gone)
        .map(|(slug, name)| Choice {
            slug,
            label: name,
            name,
            checked: subscriber.tags.iter().any(|t| t == slug),
        })
        .collect()
}

/// Messages are often an error's text ("the link has expired"): a
/// sentence on a page starts with a capital.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The compiled templates and the last build's site-wide context.
pub struct ServerPages {
    templates: PageTemplates,
    config: Config,
    context_file: PathBuf,
    /// The context file's modification time and contents, once read.
    cached: Mutex<Option<(SystemTime, serde_json::Value)>>,
}

impl ServerPages {
    pub fn load(config: &Config) -> Result<Self, Problems> {
        Ok(ServerPages {
            templates: PageTemplates::load(config)?,
            config: config.clone(),
            context_file: config.output_dir.join(paths::SERVER_PAGE_CONTEXT),
            cached: Mutex::new(None),
        })
    }

    /// Draws every page once with sample values, so `serve` refuses to start
    /// with a template that would fail for every reader.
    pub fn check(&self) -> Result<(), Problem> {
        let sample = Subscriber::sample();
        let pages = [
            Page::Message {
                status: 404,
                title: "Sample",
                message: "sample",
            },
            Page::Confirm {
                email: &sample.email,
                token: "sample",
            },
            Page::Unsubscribe {
                subscriber: &sample,
                token: "sample",
                preferences_token: "sample",
            },
            Page::Preferences {
                subscriber: &sample,
                token: "sample",
                unsubscribe_token: "sample",
                tags: &[],
                notice: Some("Saved."),
            },
        ];
        for page in &pages {
            if let Err(message) = self.try_render(page, "") {
                return Err(crate::render::templates::render_problem(
                    &self.config,
                    page.template(),
                    &message,
                ));
            }
        }
        Ok(())
    }

    /// Draws `page` as the answer to a request for `path`: its links are
    /// relative, so they work whether `serve` is reached directly or behind
    /// a proxy that maps the site's base path to it.
    pub fn render(&self, page: &Page<'_>, path: &str) -> Html<String> {
        let root = paths::up_to_root(path.trim_start_matches('/'));
        match self.try_render(page, &root) {
            Ok(html) => Html(html),
            Err(message) => {
                tracing::error!(template = page.template(), %message, "cannot draw the page; drawn plainly");
                plain(page.title(), &plain_body(page, &root))
            }
        }
    }

    fn try_render(&self, page: &Page<'_>, root: &str) -> Result<String, String> {
        let mut context = self.site_context();
        let site_name = context
            .get("site")
            .and_then(|site| site.get("name"))
            .and_then(|name| name.as_str())
            .unwrap_or(&self.config.site.title)
            .to_string();
        context.insert("page_title", &format!("{} · {site_name}", page.title()));
        context.insert("root", root);
        page.add_to(&mut context, &self.config, root);
        self.templates.render(page.template(), &context)
    }

    /// The last build's site-wide context, read again when the file changed;
    /// without one (a site not built by this version), what the config says.
    fn site_context(&self) -> Context {
        let modified = std::fs::metadata(&self.context_file).and_then(|m| m.modified());
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(modified) = modified
            && cached.as_ref().is_none_or(|(seen, _)| *seen != modified)
        {
            match read_context(&self.context_file) {
                Ok(value) => *cached = Some((modified, value)),
                Err(e) => {
                    tracing::warn!(file = %self.context_file.display(), error = %e, "cannot read the site's page context")
                }
            }
        }
        cached
            .as_ref()
            .and_then(|(_, value)| Context::from_value(value.clone()).ok())
            .unwrap_or_else(|| self.templates.context_without_build(&self.config))
    }
}

fn read_context(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// What a page says, for the plain fallback: the sentence, and the
/// button where the page has one (a reader must still be able to confirm
/// or unsubscribe when a template fails).
fn plain_body(page: &Page<'_>, root: &str) -> String {
    let button = |action: String, label: &str| {
        format!(
            "<form method=\"post\" action=\"{}\"><button type=\"submit\">{label}</button></form>",
            escape_html(&format!("{root}{action}"))
        )
    };
    let sentence = |text: &str| format!("<p>{}</p>", escape_html(text));
    match page {
        Page::Message { message, .. } => sentence(&capitalised(message)),
        Page::Confirm { email, token } => {
            sentence(&format!("Send the digest to {email}?"))
                + &button(paths::confirm(token), "Confirm my subscription")
        }
        Page::Unsubscribe {
            subscriber, token, ..
        } => {
            sentence(&format!("Stop the digest for {}?", subscriber.email))
                + &button(paths::unsubscribe(token), "Unsubscribe")
        }
        Page::Preferences { .. } => {
            sentence("This page cannot be shown now; please try again later.")
        }
    }
}

/// A bare page, for when the site's templates fail.
fn plain(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t}</title></head>\
         <body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape_html(title)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_start_with_a_capital() {
        assert_eq!(
            super::capitalised("the link has expired."),
            "The link has expired."
        );
        assert_eq!(super::capitalised("été"), "Été");
        assert_eq!(super::capitalised(""), "");
    }
}
