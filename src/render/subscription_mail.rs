//! The emails about a subscription, as opposed to digests: the double
//! opt-in confirmation (`confirm`), the welcome after it (`welcome`), and
//! the "manage your subscription" link sent when an address that is already
//! subscribed signs up again (`manage`). Each is a pair of Tera templates,
//! `<kind>.html` (extending `email.html`, CSS inlined) and `<kind>.txt`,
//! whose first line is `Subject: …`.
//!
//! Pure, like the rest of `render`: templates are read once by
//! [`SubscriptionMail::load`]; no clock, no I/O after that. What the links
//! are and who gets which email is the caller's (`server::mailer`).

use serde::Serialize;
use tera::{Context, Tera};

use super::digest::{SubscriberView, inline_css, tidy_text};
use super::{SiteView, templates};
use crate::config::{Config, tera_message};
use crate::diagnostics::{Problem, Problems};
use crate::model::Subscriber;

const BUILT_IN: [templates::BuiltIn; 7] = [
    ("email.html", include_str!("../../templates/email.html")),
    ("confirm.html", include_str!("../../templates/confirm.html")),
    ("confirm.txt", include_str!("../../templates/confirm.txt")),
    ("welcome.html", include_str!("../../templates/welcome.html")),
    ("welcome.txt", include_str!("../../templates/welcome.txt")),
    ("manage.html", include_str!("../../templates/manage.html")),
    ("manage.txt", include_str!("../../templates/manage.txt")),
];

/// Which email about a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirm,
    Welcome,
    Manage,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Confirm, Kind::Welcome, Kind::Manage];

    /// Its templates' stem, and its name in the queue and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Confirm => "confirm",
            Kind::Welcome => "welcome",
            Kind::Manage => "manage",
        }
    }

    /// Whether it goes to a subscriber (and so carries `List-Unsubscribe`):
    /// a confirmation goes to an address that has not subscribed yet.
    pub fn to_a_subscriber(self) -> bool {
        self != Kind::Confirm
    }
}

/// The links an email may carry; each template uses those of its kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Links {
    /// The site's home page.
    pub site: String,
    /// `confirm` only.
    pub confirm: String,
    /// `welcome` and `manage`.
    pub preferences: String,
    pub unsubscribe: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("rendering {template}: {message}")]
    Template { template: String, message: String },
    #[error("{template} must start with a `Subject: …` line, then a blank line")]
    NoSubject { template: String },
    #[error("inlining the CSS of {template}: {message}")]
    Css { template: String, message: String },
}

/// One email, ready to be put in an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates of the emails about a subscription.
pub struct SubscriptionMail {
    tera: Tera,
}

impl SubscriptionMail {
    /// The built-in templates, each replaced by the site's file of the same name.
    pub fn load(config: &Config) -> Result<Self, Problems> {
        Ok(SubscriptionMail {
            tera: templates::load(config, &BUILT_IN)?,
        })
    }

    pub fn render(
        &self,
        kind: Kind,
        config: &Config,
        subscriber: &Subscriber,
        links: &Links,
        expires_hours: i64,
    ) -> Result<RenderedMail, MailError> {
        let mut context = Context::new();
        context.insert("site", &SiteView::new(config));
        context.insert(
            "subscriber",
            &SubscriberView::new(subscriber, &config.tracks, &[]),
        );
        context.insert("links", links);
        context.insert("expires_hours", &expires_hours);
        let postal = config.digest.as_ref().map(|d| d.postal_address.as_str());
        context.insert("postal_address", postal.unwrap_or_default());
        let text_template = format!("{}.txt", kind.name());
        let (subject, text) = split_subject(&self.render_one(&text_template, &context)?).ok_or(
            MailError::NoSubject {
                template: text_template,
            },
        )?;
        context.insert("subject", &subject);
        let html_template = format!("{}.html", kind.name());
        let html = inline_css(&self.render_one(&html_template, &context)?).map_err(|e| {
            MailError::Css {
                template: html_template,
                message: e.to_string(),
            }
        })?;
        Ok(RenderedMail {
            subject,
            text: tidy_text(&text),
            html,
        })
    }

    /// Renders every kind for a sample subscriber, so that `check` and
    /// `serve`'s start find what only shows when a template renders (an
    /// unknown variable, a missing subject line), at its file and line.
    pub fn check(&self, config: &Config) -> Result<(), Problem> {
        let links = Links {
            site: config.site.base_url.to_string(),
            confirm: config.site.url("confirm?token=sample"),
            preferences: config.site.url("preferences?token=sample"),
            unsubscribe: config.site.url("unsubscribe?token=sample"),
        };
        for kind in Kind::ALL {
            if let Err(e) = self.render(kind, config, &Subscriber::sample(), &links, 48) {
                let template = match &e {
                    MailError::Template { template, .. }
                    | MailError::NoSubject { template }
                    | MailError::Css { template, .. } => template.clone(),
                };
                return Err(templates::render_problem(config, &template, &e.to_string()));
            }
        }
        Ok(())
    }

    fn render_one(&self, template: &str, context: &Context) -> Result<String, MailError> {
        self.tera
            .render(template, context)
            .map_err(|e| MailError::Template {
                template: template.to_string(),
                message: tera_message(&e),
            })
    }
}

/// The `Subject:` first line (one line, spaces collapsed) and the rest.
fn split_subject(text: &str) -> Option<(String, String)> {
    let text = text.trim_start();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first.strip_prefix("Subject:")?;
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    (!subject.is_empty()).then(|| (subject, rest.trim_start_matches(['\r', '\n']).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
        author = { name = \"A\" }\n[[tracks]]\nslug = \"llm\"\ntitle = \"LLMs\"\n\
        [[tracks]]\nslug = \"rag\"\ntitle = \"Retrieval\"\n\
        [digest]\nschedule = \"0 8 * * MON\"\nfrom = \"Digest <digest@example.com>\"\npostal_address = \"1 Test Street\"\n";

    fn welcome_text(tracks: &[&str], tags: &[&str]) -> String {
        let config = Config::parse(CONFIG, std::path::Path::new("/nonexistent/config.toml"))
            .expect("the test config is valid");
        let mail = SubscriptionMail::load(&config).expect("the built-in templates load");
        mail.check(&config).expect("every kind renders");
        let subscriber = Subscriber {
            tracks: tracks.iter().map(|t| t.to_string()).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Subscriber::sample()
        };
        let rendered = mail
            .render(Kind::Welcome, &config, &subscriber, &Links::default(), 48)
            .expect("renders");
        assert_eq!(rendered.subject, "Welcome to T");
        rendered.text
    }

    #[test]
    fn the_welcome_says_what_the_reader_follows() {
        assert!(welcome_text(&[], &[]).contains("of T:\nevery track, new shorts only"));
        assert!(welcome_text(&["llm"], &[]).contains("of T:\nLLMs, new shorts only"));
        assert!(
            welcome_text(&["llm"], &["kv-cache"])
                .contains("of T:\nLLMs, and shorts tagged kv-cache, new shorts only")
        );
        assert!(
            welcome_text(&[], &["kv-cache", "gqa"])
                .contains("of T:\nshorts tagged kv-cache, gqa, new shorts only")
        );
    }

    #[test]
    fn the_subject_is_the_first_line() {
        assert_eq!(
            split_subject("Subject:  Hello   world \n\nBody\n"),
            Some(("Hello world".to_string(), "Body\n".to_string()))
        );
        assert_eq!(split_subject("Hello\n\nBody"), None);
        assert_eq!(split_subject("Subject:\n\nBody"), None);
    }
}
