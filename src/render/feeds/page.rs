//! `feed.html` beside each feed's files: the page a browser is shown when a
//! reader opens `rss.xml` or `atom.xml` (what `feed.xsl` makes of the XML,
//! written at build time). Chromium is removing XSLT and already warns on
//! pages that use it, so `serve` answers a browser's navigation to an XML
//! feed with this page instead (see `server::static_files`); the XSLT stays
//! for static hosts and browsers that still have it.
//!
//! Must not: write the feeds themselves, or differ from what `feed.xsl`
//! shows (title, addresses, each entry's title as a link, its publication
//! day as people write it, its summary).

use super::{FEED_FORMATS, Feed, escape_html, stylesheet_href};
use crate::config::Config;
use crate::paths;

/// The page of `feed`, linking `feed.css` like the XSLT's page does.
pub fn write(feed: &Feed<'_>, config: &Config) -> String {
    let title = escape_html(&feed.title);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} (web feed)</title>\n<link rel=\"stylesheet\" href=\"{css}\">\n\
         </head>\n<body class=\"feed-page\">\n<main>\n",
        lang = escape_html(&config.site.language),
        css = escape_html(&stylesheet_href(config, paths::FEED_STYLESHEET)),
    );
    page.push_str(&addresses(feed, config));
    page.push_str(&format!(
        "<header>\n<h1>{title}</h1>\n<p class=\"feed-description\">{}</p>\n\
         <p><a href=\"{}\">Read it on the website</a></p>\n</header>\n",
        escape_html(&feed.description),
        escape_html(feed.page_url.as_str()),
    ));
    if feed.entries.is_empty() {
        page.push_str("<p class=\"feed-empty\">Nothing here yet.</p>\n");
    } else {
        page.push_str("<ol class=\"feed-items\">\n");
        for entry in &feed.entries {
            page.push_str(&format!(
                "<li>\n<article>\n<h2><a href=\"{url}\">{title}</a></h2>\n\
                 <p class=\"feed-date\"><time datetime=\"{machine}\">{day}</time></p>\n\
                 <p class=\"feed-summary\">{summary}</p>\n</article>\n</li>\n",
                url = escape_html(&entry.url),
                title = escape_html(&entry.title),
                machine = entry.published.format("%Y-%m-%d"),
                day = entry.published.format("%b %-d, %Y"),
                summary = escape_html(&entry.summary),
            ));
        }
        page.push_str("</ol>\n");
    }
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

/// What to copy into a feed reader: the feed's address in each format.
fn addresses(feed: &Feed<'_>, config: &Config) -> String {
    let each: Vec<String> = FEED_FORMATS
        .iter()
        .map(|format| {
            format!(
                "{}: <code>{}</code>",
                format.label,
                escape_html(&feed.url(&config.site, format))
            )
        })
        .collect();
    format!(
        "<p class=\"feed-about\"><strong>This is a web feed.</strong> \
         Copy its address into your feed reader to follow it: {}</p>\n",
        each.join(", ")
    )
}
