//! A short's Markdown body to HTML, with every URL made absolute, code
//! highlighted and formulas in MathML.
//!
//! Feed readers show item content away from the site, so a relative link or
//! image would break there; resolving against the short's own page here means
//! every output (feeds, pages, email) shares one correct HTML string. Raw HTML
//! in the body keeps its markup; only its `href` and `src` values are resolved.

use std::collections::VecDeque;
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};
use url::Url;

use super::highlight;
use super::math::{self, Display};
use crate::config::Config;

/// What a body may use beyond CommonMark with tables, footnotes and
/// strikethrough, as the site's `[build]` table switches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Fenced code in a known language highlighted (`highlight_code`).
    pub highlight_code: bool,
    /// `$…$` and `$$…$$` read as LaTeX and written as MathML (`math`).
    pub math: bool,
}

impl Features {
    pub fn of(config: &Config) -> Features {
        Features {
            highlight_code: config.highlight_code,
            math: config.math,
        }
    }
}

/// A body as HTML, and the formulas in it that could not be rendered.
#[derive(Debug)]
pub struct Rendered {
    pub html: String,
    pub math_errors: Vec<MathError>,
}

/// A formula that is not LaTeX the renderer knows.
#[derive(Debug, PartialEq, Eq)]
pub struct MathError {
    /// Where the formula starts, in bytes from the start of the Markdown.
    pub offset: usize,
    /// What was wrong, naming the formula.
    pub message: String,
}

impl MathError {
    /// The line of the formula, counting the Markdown's first as `first_line`.
    pub fn line(&self, markdown: &str, first_line: usize) -> usize {
        let before = markdown.get(..self.offset).unwrap_or(markdown);
        first_line + before.matches('\n').count()
    }
}

/// Renders `markdown` to HTML, resolving URLs against `page`, with the
/// `features` the site has on.
pub fn to_html(markdown: &str, page: &Url, features: Features) -> Rendered {
    let mut options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SMART_PUNCTUATION;
    if features.math {
        options |= Options::ENABLE_MATH;
    }
    let mut formulas = Formulas {
        markdown,
        errors: Vec::new(),
        unopened_in_block: false,
    };
    let events = Parser::new_ext(markdown, options)
        .into_offset_iter()
        .map(|(event, range)| formulas.render(event, range))
        .map(|event| absolutize(event, page));
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    if features.highlight_code {
        html::push_html(&mut out, Highlighted::new(events));
    } else {
        html::push_html(&mut out, events);
    }
    Rendered {
        html: strip_xml_invalid(&out),
        math_errors: formulas.errors,
    }
}

/// Turns math events into MathML, noting the formulas that cannot be.
struct Formulas<'m> {
    markdown: &'m str,
    errors: Vec<MathError>,
    /// Whether a `$$` that opened no formula was noted in this block.
    unopened_in_block: bool,
}

impl<'m> Formulas<'m> {
    /// A math event as MathML (raw HTML); a formula that cannot be rendered
    /// as its source in `<code>`, with the reason noted. Other events as
    /// they come.
    fn render(&mut self, event: Event<'m>, range: Range<usize>) -> Event<'m> {
        let (latex, display, fence) = match event {
            Event::InlineMath(_) if self.price_range(&range) => {
                return Event::Text(self.markdown[range].into());
            }
            Event::InlineMath(latex) => (latex, Display::Inline, "$"),
            Event::DisplayMath(latex) => (latex, Display::Block, "$$"),
            Event::Text(text) => {
                self.unopened_display_formula(&range);
                return Event::Text(text);
            }
            Event::End(end) => {
                self.unopened_in_block = false;
                return Event::End(end);
            }
            other => return other,
        };
        match math::to_mathml(&latex, display) {
            Ok(mathml) => Event::InlineHtml(mathml.into()),
            Err(reason) => {
                let shown: String = latex.trim().chars().take(40).collect();
                let more = if shown.len() < latex.trim().len() {
                    "…"
                } else {
                    ""
                };
                // Dollar amounts the parser read as a formula have no commands.
                let hint = if display == Display::Inline && !latex.contains('\\') {
                    " (if these dollar signs are not a formula, write `\\$`)"
                } else {
                    ""
                };
                self.note(
                    range.start,
                    format!(
                        "the formula `{fence}{shown}{more}{fence}` is not LaTeX this build can render: {reason}{hint}"
                    ),
                );
                Event::Code(latex)
            }
        }
    }

    /// Whether the `$…$` at `range` is a price range ("$5-$10") rather than
    /// a formula: a digit right after the closing `$` (Pandoc's rule, which
    /// the Markdown parser does not have).
    fn price_range(&self, range: &Range<usize>) -> bool {
        self.markdown[range.end..].starts_with(|c: char| c.is_ascii_digit())
    }

    /// Notes a `$$` left as text: the Markdown parser takes `$$…$$` as a
    /// formula only when its braces pair up and it is closed, and a writer
    /// would otherwise find the LaTeX printed on the page.
    fn unopened_display_formula(&mut self, range: &Range<usize>) {
        let escaped = self.markdown[..range.start].ends_with('\\');
        let opens = self.markdown.get(range.clone()) == Some("$")
            && self.markdown[range.end..].starts_with('$');
        if !opens || escaped {
            return;
        }
        // Once a paragraph: its closing `$$` may pair with the next
        // formula's opening one, so the rest of the block is unreliable.
        if !self.unopened_in_block {
            self.unopened_in_block = true;
            self.note(
                range.start,
                "`$$` opens no formula here: a formula's braces `{` `}` must pair up and it must end with `$$` (write `\\$\\$` for two dollar signs)",
            );
        }
    }

    fn note(&mut self, offset: usize, message: impl Into<String>) {
        self.errors.push(MathError {
            offset,
            message: message.into(),
        });
    }
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

    const ALL: Features = Features {
        highlight_code: true,
        math: true,
    };

    fn page() -> Url {
        Url::parse("https://example.com/blog/shorts/gqa/").unwrap()
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let html = to_html(
            "[a](/shorts/kv/) [b](../mqa/) [c](#x) [d](https://other.org/p) ![i](img/f.png)",
            &page(),
            ALL,
        )
        .html;
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
            ALL,
        ).html;
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
        let html = to_html("Tom & Jerry <3 \u{1}`a < b`", &page(), ALL).html;
        assert_eq!(html, "<p>Tom &amp; Jerry &lt;3 <code>a &lt; b</code></p>\n");
    }

    #[test]
    fn fenced_code_in_a_known_language_is_highlighted_unless_switched_off() {
        let markdown = "Before\n\n```python\nx = 1  # one\n```\n\n```nosuchlang\n<x>\n```\n\n    indented\n\nAfter";
        let html = to_html(markdown, &page(), ALL).html;
        assert_eq!(
            html,
            "<p>Before</p>\n<pre class=\"code\"><code class=\"language-python\">x = <span class=\"hl-number\">1</span>  <span class=\"hl-comment\"># one\n</span></code></pre>\n\
             <pre><code class=\"language-nosuchlang\">&lt;x&gt;\n</code></pre>\n<pre><code>indented\n</code></pre>\n<p>After</p>\n"
        );
        let plain = to_html(
            markdown,
            &page(),
            Features {
                highlight_code: false,
                math: true,
            },
        )
        .html;
        assert!(
            plain.starts_with(
                "<p>Before</p>\n<pre><code class=\"language-python\">x = 1  # one\n</code></pre>"
            ),
            "{plain}"
        );
    }

    #[test]
    fn formulas_become_mathml_and_prices_stay_text() {
        for text in [
            "It costs $5 and $10 a month.",
            "It costs $5-$10 a month, or $5/$8 a week.",
            "From $5 to $ 10.",
            "Between $5 and $6, roughly.",
            "Save $5, then $6.",
            "An escaped \\$x$ is text.",
            "In code `$x$` is code.",
        ] {
            let rendered = to_html(text, &page(), ALL);
            assert!(
                !rendered.html.contains("<math"),
                "{text}: {}",
                rendered.html
            );
            assert_eq!(rendered.math_errors, [], "{text}");
        }
        let rendered = to_html("Energy $E = mc^2$ and\n\n$$\\sum_{i=1}^n i$$", &page(), ALL);
        assert_eq!(rendered.math_errors, []);
        assert!(
            rendered.html.contains("<p>Energy <math"),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("<msup>"), "{}", rendered.html);
        assert!(
            rendered.html.contains("display=\"block\""),
            "{}",
            rendered.html
        );
        let off = Features {
            highlight_code: true,
            math: false,
        };
        assert_eq!(to_html("$x$", &page(), off).html, "<p>$x$</p>\n");
    }

    #[test]
    fn a_formula_that_cannot_be_rendered_is_an_error_at_its_line() {
        let markdown = "First.\n\nThen $\\frac{a}$ and\n\n$$\\nosuch$$";
        let rendered = to_html(markdown, &page(), ALL);
        let lines: Vec<usize> = rendered
            .math_errors
            .iter()
            .map(|e| e.line(markdown, 5))
            .collect();
        assert_eq!(lines, [7, 9]);
        let first = &rendered.math_errors[0].message;
        assert!(
            first.starts_with("the formula `$\\frac{a}$` is not LaTeX this build can render: "),
            "{first}"
        );
        let unopened = "Prices: \\$\\$ and $5.\n\n$$\\frac{a}{b$$ then $$x$$ and $$\\frac{c$$\n\nAnd $$\\frac{d$$.";
        let errors = to_html(unopened, &page(), ALL).math_errors;
        assert_eq!(
            errors.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [22, 69],
            "one error per paragraph with an unopened formula: {errors:?}"
        );
        assert!(errors[0].message.starts_with("`$$` opens no formula here"));
        assert!(
            rendered.html.contains("<code>\\frac{a}</code>"),
            "{}",
            rendered.html
        );
    }
}
