//! The few small HTML pages `shorts serve` answers with. Every value is escaped.

use axum::response::Html;

use crate::config::Config;
use crate::model::Subscriber;
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

pub fn preferences_form(
    config: &Config,
    subscriber: &Subscriber,
    token: &str,
    notice: Option<&str>,
) -> String {
    let boxes: String = config
        .tracks
        .iter()
        .map(|t| {
            format!(
                "<label><input type=\"checkbox\" name=\"tracks\" value=\"{}\"{}> {}</label>",
                escape_html(&t.slug),
                if subscriber.wants(&t.slug) {
                    " checked"
                } else {
                    ""
                },
                escape_html(&t.title)
            )
        })
        .collect();
    format!(
        "{}<p>Tracks in the digest for <strong>{}</strong>:</p>\
         <form method=\"post\" action=\"{}\"><fieldset><legend>Tracks</legend>{boxes}</fieldset>\
         <p><button type=\"submit\">Save</button></p></form>",
        notice.map(paragraph).unwrap_or_default(),
        escape_html(&subscriber.email),
        escape_html(&paths::preferences(token))
    )
}
