//! The few small HTML pages `shorts serve` answers with. Every value is escaped.

use axum::response::Html;

use crate::config::Config;
use crate::model::{Subscriber, Tag};
use crate::paths;
use crate::render::escape_html;

pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>{t}</title>\
         <style>body{{font:17px/1.55 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}\
         button{{font:inherit;padding:.5rem 1rem}}label{{display:block;margin:.3rem 0}}</style></head>\
         <body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape_html(title)
    ))
}

pub fn paragraph(text: &str) -> String {
    format!("<p>{}</p>", escape_html(text))
}

pub fn unsubscribe_form(email: &str, token: &str) -> String {
    format!(
        "<p>Stop the weekly digest for <strong>{}</strong>?</p>\
         <form method=\"post\" action=\"{}\"><button type=\"submit\">Unsubscribe</button></form>",
        escape_html(email),
        escape_html(&paths::unsubscribe(token))
    )
}

/// The one button that confirms a sign-up: a GET (a mail scanner following
/// the link) only shows it.
pub fn confirm_form(email: &str, token: &str) -> String {
    format!(
        "<p>Send the weekly digest to <strong>{}</strong>?</p>\
         <form method=\"post\" action=\"{}\"><button type=\"submit\">Confirm my subscription</button></form>",
        escape_html(email),
        escape_html(&paths::confirm(token))
    )
}

/// The reader's choice: a box per track, then a box per tag the site uses
/// (and per tag they follow that no short carries now, still ticked).
pub fn preferences_form(
    config: &Config,
    site_tags: &[Tag],
    subscriber: &Subscriber,
    token: &str,
    notice: Option<&str>,
) -> String {
    let checked = |yes: bool| if yes { " checked" } else { "" };
    let boxes: String = config
        .tracks
        .iter()
        .map(|t| {
            format!(
                "<label><input type=\"checkbox\" name=\"tracks\" value=\"{}\"{}> {}</label>",
                escape_html(&t.slug),
                checked(subscriber.wants(&t.slug)),
                escape_html(&t.title)
            )
        })
        .collect();
    let gone = subscriber
        .tags
        .iter()
        .filter(|slug| !site_tags.iter().any(|t| t.slug == **slug))
        .map(|slug| (slug.as_str(), slug.as_str()));
    let tags = site_tags
        .iter()
        .map(|t| (t.slug.as_str(), t.name.as_str()))
        .chain(gone);
    let tag_boxes: String = tags
        .map(|(slug, name)| {
            format!(
                "<label><input type=\"checkbox\" name=\"tags\" value=\"{}\"{}> {}</label>",
                escape_html(slug),
                checked(subscriber.tags.iter().any(|t| t == slug)),
                escape_html(name)
            )
        })
        .collect();
    let tag_fieldset = if tag_boxes.is_empty() {
        String::new()
    } else {
        format!(
            "<fieldset><legend>Tags</legend><p>Also every short with one of these tags, whatever its track.</p>{tag_boxes}</fieldset>"
        )
    };
    format!(
        "{}<p>Tracks in the digest for <strong>{}</strong>:</p>\
         <form method=\"post\" action=\"{}\"><fieldset><legend>Tracks</legend>{boxes}</fieldset>{tag_fieldset}\
         <p><button type=\"submit\">Save</button></p></form>",
        notice.map(paragraph).unwrap_or_default(),
        escape_html(&subscriber.email),
        escape_html(&paths::preferences(token))
    )
}
