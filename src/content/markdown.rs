//! A short's Markdown body to HTML, with every URL made absolute.
//!
//! Feed readers show item content away from the site, so a relative link or
//! image would break there; resolving against the short's own page here means
//! every output (feeds, pages, email) shares one correct HTML string. Raw HTML
//! in the body keeps its markup; only its `href` and `src` values are resolved.

use std::collections::VecDeque;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};
use url::Url;

use super::highlight;

/// Renders `markdown` to HTML, resolving URLs against `page`, with code
/// blocks highlighted when `highlight` says so.
pub fn to_html(markdown: &str, page: &Url, highlight: bool) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SMART_PUNCTUATION;
    let events = Parser::new_ext(markdown, options).map(|event| absolutize(event, page));
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    if highlight {
        html::push_html(&mut out, Highlighted::new(events));
    } else {
        html::push_html(&mut out, events);
    }
    strip_xml_invalid(&out)
}

/// The events, each fenced code block in a language [`highlight`] knows
/// turned into one HTML event; every other event as it comes.
struct Highlighted<'a, I> {
    events: I,
    /// A block whose highlighting failed, to be written plain.
    pending: VecDeque<Event<'a>>,
}

impl<'a, I: Iterator<Item = Event<'a>>> Highlighted<'a, I> {
    fn new(events: I) -> Self {
        Highlighted {
            events,
            pending: VecDeque::new(),
        }
    }

    /// The rest of the block opened by `start`: one event if it could be
    /// highlighted, else its first event as it came (the rest queued).
    fn block(&mut self, start: Event<'a>, language: &str) -> Option<Event<'a>> {
        let mut code = String::new();
        let mut plain = vec![start];
        for event in self.events.by_ref() {
            let end = matches!(event, Event::End(TagEnd::CodeBlock));
            if let Event::Text(text) = &event {
                code.push_str(text);
            }
            plain.push(event);
            if end {
                break;
            }
        }
        if let Some(html) = highlight::code_block(language, &code) {
            return Some(Event::Html(html.into()));
        }
        self.pending.extend(plain);
        self.pending.pop_front()
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Highlighted<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        let event = self.events.next()?;
        let language = match &event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                highlight::language(info).to_string()
            }
            _ => return Some(event),
        };
        if language.is_empty() {
            return Some(event);
        }
        self.block(event, &language)
    }
}

fn absolutize<'a>(event: Event<'a>, page: &Url) -> Event<'a> {
    match event {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: resolve(dest_url, page),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: resolve(dest_url, page),
            title,
            id,
        }),
        Event::Html(html) => Event::Html(absolutize_html(&html, page).into()),
        Event::InlineHtml(html) => Event::InlineHtml(absolutize_html(&html, page).into()),
        other => other,
    }
}

fn resolve<'a>(url: CowStr<'a>, page: &Url) -> CowStr<'a> {
    match page.join(url.trim()) {
        Ok(absolute) => absolute.to_string().into(),
        // Not a URL at all (e.g. "http://[bad"): leave it as written.
        Err(_) => url,
    }
}

/// Resolves the values of `href="…"` and `src="…"` attributes in raw HTML.
fn absolutize_html(html: &str, page: &Url) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some((before, name, quote, value, after)) = next_url_attribute(rest) {
        out.push_str(before);
        out.push_str(name);
        out.push(quote);
        out.push_str(&resolve(value.into(), page));
        out.push(quote);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Finds the next quoted `href`/`src` attribute: (text before, `name=`, quote, value, text after).
fn next_url_attribute(html: &str) -> Option<(&str, &str, char, &str, &str)> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    loop {
        let found = ["href", "src"]
            .iter()
            .filter_map(|attr| lower[from..].find(attr).map(|i| (from + i, attr.len())))
            .min()?;
        let (start, len) = found;
        let preceded_by_space = html[..start].ends_with(|c: char| c.is_ascii_whitespace());
        let after_name = &html[start + len..];
        let trimmed = after_name.trim_start();
        if preceded_by_space && trimmed.starts_with('=') {
            let value_part = trimmed[1..].trim_start();
            if let Some(quote) = value_part
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                && let Some(end) = value_part[1..].find(quote)
            {
                let name_end = html.len() - value_part.len();
                let value = &value_part[1..1 + end];
                let after = &value_part[1 + end + 1..];
                return Some((&html[..start], &html[start..name_end], quote, value, after));
            }
        }
        from = start + len;
    }
}

/// Removes characters XML 1.0 forbids even as references (C0 controls other
/// than tab, newline and carriage return; U+FFFE and U+FFFF), so a stray
/// control character in a body cannot make a feed unparseable.
pub fn strip_xml_invalid(text: &str) -> String {
    text.chars().filter(|&c| is_xml_char(c)).collect()
}

pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/blog/shorts/gqa/").unwrap()
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let html = to_html(
            "[a](/shorts/kv/) [b](../mqa/) [c](#x) [d](https://other.org/p) ![i](img/f.png)",
            &page(),
            true,
        );
        assert!(
            html.contains(r#"href="https://example.com/shorts/kv/""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://example.com/blog/shorts/mqa/""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://example.com/blog/shorts/gqa/#x""#),
            "{html}"
        );
        assert!(html.contains(r#"href="https://other.org/p""#), "{html}");
        assert!(
            html.contains(r#"src="https://example.com/blog/shorts/gqa/img/f.png""#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_attributes_become_absolute() {
        let html = to_html(
            "<p><img SRC='/a.png' alt=\"x\"> <a data-href=\"/no\" href = \"/yes\">y</a></p>\n\nText <a href=\"rel\">r</a>",
            &page(),
            true,
        );
        assert!(html.contains("SRC='https://example.com/a.png'"), "{html}");
        assert!(html.contains("data-href=\"/no\""), "{html}");
        assert!(
            html.contains("href = \"https://example.com/yes\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://example.com/blog/shorts/gqa/rel\""),
            "{html}"
        );
    }

    #[test]
    fn escapes_text_and_drops_control_characters() {
        let html = to_html("Tom & Jerry <3 \u{1}`a < b`", &page(), true);
        assert_eq!(html, "<p>Tom &amp; Jerry &lt;3 <code>a &lt; b</code></p>\n");
    }

    #[test]
    fn fenced_code_in_a_known_language_is_highlighted_unless_switched_off() {
        let markdown = "Before\n\n```python\nx = 1  # one\n```\n\n```nosuchlang\n<x>\n```\n\n    indented\n\nAfter";
        let html = to_html(markdown, &page(), true);
        assert_eq!(
            html,
            "<p>Before</p>\n<pre class=\"code\"><code class=\"language-python\">x = <span class=\"hl-number\">1</span>  <span class=\"hl-comment\"># one\n</span></code></pre>\n\
             <pre><code class=\"language-nosuchlang\">&lt;x&gt;\n</code></pre>\n<pre><code>indented\n</code></pre>\n<p>After</p>\n"
        );
        let plain = to_html(markdown, &page(), false);
        assert!(
            plain.starts_with(
                "<p>Before</p>\n<pre><code class=\"language-python\">x = 1  # one\n</code></pre>"
            ),
            "{plain}"
        );
    }
}
