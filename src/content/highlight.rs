//! Fenced code blocks highlighted at build time, as classes: a block that
//! names a language syntect knows (```` ```rust ````) becomes spans of seven
//! kinds (`hl-comment`, `hl-string`, `hl-escape`, `hl-keyword`,
//! `hl-number`, `hl-function`, `hl-type`) that the stylesheet colours,
//! light and dark; no script runs in any reader. syntect's own HTML names
//! every scope of every token (twenty times the code's size); only what a
//! reader sees as a colour is kept here, so feeds stay small. Owns the HTML
//! of one code block; the colours are `style.css`'s (and the digest
//! template's, for email). A block in a language it does not know, or
//! whose grammar fails on it, stays plain, as pulldown-cmark writes it.

use std::sync::LazyLock;

use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxSet};
use syntect::util::LinesWithEndings;

use crate::render::{escape_html, push_escaped_html};

/// The grammars shipped in the binary, loaded at the first code block.
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// What a token shows as: a class, or plain text.
type Kind = Option<&'static str>;

/// Scope prefixes and the kind they make a token, most specific first; the
/// innermost scope of a token that matches one decides.
static KINDS: LazyLock<Vec<(Scope, Kind)>> = LazyLock::new(|| {
    [
        ("comment", Some("hl-comment")),
        ("constant.character.escape", Some("hl-escape")),
        ("string", Some("hl-string")),
        ("constant.numeric", Some("hl-number")),
        ("constant.language", Some("hl-number")),
        ("keyword.operator", None),
        ("keyword", Some("hl-keyword")),
        ("storage", Some("hl-keyword")),
        ("entity.name.function", Some("hl-function")),
        ("support.function", Some("hl-function")),
        ("entity.name.type", Some("hl-type")),
        ("entity.name.class", Some("hl-type")),
        ("support.type", Some("hl-type")),
        ("support.class", Some("hl-type")),
    ]
    .into_iter()
    .filter_map(|(name, kind)| Some((Scope::new(name).ok()?, kind)))
    .collect()
});

/// The info string's first word, the language's name (`rust` in
/// ```` ```rust,ignore ````).
pub fn language(info: &str) -> &str {
    info.split([',', ' ', '\t', '{'])
        .next()
        .unwrap_or("")
        .trim()
}

/// The block `code` in `language` as highlighted HTML (`<pre><code …>`),
/// or `None` when the language is unknown or its grammar fails on the
/// text (then the block is written plain).
pub fn code_block(language: &str, code: &str) -> Option<String> {
    if language.is_empty() {
        return None;
    }
    let syntaxes = &*SYNTAXES;
    let syntax = syntaxes.find_syntax_by_token(language)?;
    let mut state = ParseState::new(syntax);
    let mut scopes = ScopeStack::new();
    let mut out = Spans::default();
    // The kind changes only when the scopes do, not at every token.
    let mut kind = None;
    for line in LinesWithEndings::from(code) {
        let mut from = 0;
        for (at, op) in state.parse_line(line, syntaxes).ok()? {
            out.push(&line[from..at], kind);
            from = at;
            scopes.apply(&op).ok()?;
            kind = kind_of(&scopes);
        }
        out.push(&line[from..], kind);
    }
    Some(format!(
        "<pre class=\"code\"><code class=\"language-{}\">{}</code></pre>\n",
        escape_html(language),
        out.finish()
    ))
}

fn kind_of(scopes: &ScopeStack) -> Kind {
    scopes.as_slice().iter().rev().find_map(|&scope| {
        KINDS
            .iter()
            .find(|(prefix, _)| prefix.is_prefix_of(scope))
            .map(|&(_, kind)| kind)
    })?
}

/// HTML of runs of text, each run of one kind in one span.
#[derive(Default)]
struct Spans {
    html: String,
    open: Kind,
}

impl Spans {
    fn push(&mut self, text: &str, kind: Kind) {
        if text.is_empty() {
            return;
        }
        if kind != self.open {
            if self.open.is_some() {
                self.html.push_str("</span>");
            }
            if let Some(class) = kind {
                self.html.push_str("<span class=\"");
                self.html.push_str(class);
                self.html.push_str("\">");
            }
            self.open = kind;
        }
        push_escaped_html(&mut self.html, text);
    }

    fn finish(mut self) -> String {
        if self.open.is_some() {
            self.html.push_str("</span>");
        }
        self.html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_language_gets_classes_and_keeps_its_text() {
        let html = code_block("rust", "fn main() { let s = \"<hi>\"; } // done\n").unwrap();
        assert!(
            html.starts_with("<pre class=\"code\"><code class=\"language-rust\">"),
            "{html}"
        );
        assert!(
            html.contains(
                "<span class=\"hl-keyword\">fn</span> <span class=\"hl-function\">main</span>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-string\">&quot;&lt;hi&gt;&quot;</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-comment\">// done\n</span>"),
            "{html}"
        );
        assert!(html.contains("&lt;hi&gt;"), "text is escaped: {html}");
        let text: String = strip_tags(&html);
        assert_eq!(
            text,
            "fn main() { let s = &quot;&lt;hi&gt;&quot;; } // done\n\n"
        );
    }

    #[test]
    fn unknown_or_missing_languages_stay_plain() {
        assert_eq!(code_block("klingon", "qapla'\n"), None);
        assert_eq!(code_block("", "x\n"), None);
    }

    #[test]
    fn the_language_is_the_first_word_of_the_info_string() {
        assert_eq!(language("rust,ignore"), "rust");
        assert_eq!(language("python {linenos=true}"), "python");
        assert_eq!(language(""), "");
    }

    fn strip_tags(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }
}
