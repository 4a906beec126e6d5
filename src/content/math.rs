//! LaTeX formulas (`$…$`, `$$…$$` in a body) to MathML, at build time, so
//! pages, feeds and email show them with no script and no web font.
//!
//! Owns the translation and its limits only; where a formula sits in the
//! Markdown, and which file and line a bad one is reported at, is
//! `markdown`'s and its callers'.

use pulldown_latex::config::{DisplayMode, RenderConfig};
use pulldown_latex::{Parser, Storage, push_mathml};

/// Events one formula may expand to. A real formula is a few hundred; a
/// macro defined as ten copies of one defined as ten copies of … would
/// otherwise expand to gigabytes of MathML.
const MAX_EVENTS: usize = 20_000;

/// Groups (`{…}`, `\\left…\\right`, `\\begin…\\end`) one formula may nest.
/// The parser's time grows with the square of the depth: 8,000 braces
/// took a second, 100,000 never finished; real formulas nest a few deep.
const MAX_NESTING: usize = 100;

/// Whether a formula sits in the line (`$…$`) or is set apart (`$$…$$`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    Inline,
    Block,
}

/// The `<math>` element for `latex`, or what is wrong with it, in words
/// for a `check` problem.
pub fn to_mathml(latex: &str, display: Display) -> Result<String, String> {
    let depth = nesting_depth(latex);
    if depth > MAX_NESTING {
        return Err(format!(
            "it nests groups {depth} deep; at most {MAX_NESTING}"
        ));
    }
    let storage = Storage::new();
    let mut events = Vec::new();
    for event in Parser::new(latex, &storage) {
        if events.len() == MAX_EVENTS {
            return Err(format!(
                "it is more than {MAX_EVENTS} symbols long, or its macros expand to that"
            ));
        }
        events.push(event.map_err(|e| parser_error(&e, latex))?);
    }
    let config = RenderConfig {
        display_mode: match display {
            Display::Inline => DisplayMode::Inline,
            Display::Block => DisplayMode::Block,
        },
        // Harmless in HTML, and lets a reader that parses item content as
        // XML place the elements in MathML's namespace.
        xml: true,
        ..RenderConfig::default()
    };
    let mut mathml = String::with_capacity(latex.len() * 8);
    push_mathml(
        &mut mathml,
        events.into_iter().map(Ok::<_, std::fmt::Error>),
        config,
    )
    .map_err(|e| format!("it cannot be written as MathML: {e}"))?;
    Ok(mathml)
}

/// How deep the groups of `latex` nest, counting unescaped braces and
/// `\\left`/`\\begin` against their closers.
fn nesting_depth(latex: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = latex;
    while let Some(at) = rest.find(['{', '}', '\\']) {
        let after = &rest[at + 1..];
        let (change, skip) = match rest.as_bytes()[at] {
            b'{' => (1, 0),
            b'}' => (-1, 0),
            _ if after.starts_with("left") || after.starts_with("begin") => (1, 0),
            _ if after.starts_with("right") || after.starts_with("end") => (-1, 0),
            // `\\{`, `\\}` and `\\\\` are characters, not groups.
            _ => (0, after.chars().next().map_or(0, char::len_utf8)),
        };
        depth = depth.saturating_add_signed(change);
        deepest = deepest.max(depth);
        rest = &after[skip..];
    }
    deepest
}

/// The parser's own words without the multi-line context drawing its
/// `Display` adds (the caller names the formula and its line), and the
/// command by name where the parser only says one is unknown.
fn parser_error(error: &pulldown_latex::ParserError, latex: &str) -> String {
    let words = kind_of(error);
    match unknown_command(latex).filter(|_| words == UNKNOWN_COMMAND) {
        Some(name) => format!("`\\{name}` is not a command it knows"),
        None => words,
    }
}

/// What the parser says of a control sequence it does not know.
const UNKNOWN_COMMAND: &str = "unknown primitive command found";

fn kind_of(error: &pulldown_latex::ParserError) -> String {
    match std::error::Error::source(error) {
        Some(kind) => kind.to_string(),
        None => error.to_string(),
    }
}

/// The first command in `latex`, not defined in it, that the parser does
/// not know even given three arguments.
fn unknown_command(latex: &str) -> Option<&str> {
    commands(latex).find(|name| {
        let defined = ["\\def\\", "\\let\\", "command{\\", "command\\"]
            .iter()
            .any(|how| latex.contains(&format!("{how}{name}")));
        let storage = Storage::new();
        let probe = format!("\\{name}{{x}}{{x}}{{x}}");
        let unknown = Parser::new(&probe, &storage)
            .any(|event| event.is_err_and(|e| kind_of(&e) == UNKNOWN_COMMAND));
        !defined && unknown
    })
}

/// The names of the control sequences (`\\name`) in `latex`, in order.
fn commands(latex: &str) -> impl Iterator<Item = &str> {
    let mut rest = latex;
    std::iter::from_fn(move || {
        loop {
            let at = rest.find('\\')?;
            let after = &rest[at + 1..];
            let len = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            // `\\\\` (a line break) and `\\,` are not names.
            let skip = if len == 0 {
                after.chars().next().map_or(0, char::len_utf8)
            } else {
                len
            };
            rest = &after[skip..];
            if len > 0 {
                return Some(&after[..len]);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of LaTeX, well- and ill-formed, for formulas a writer (or a
    /// mistake) could make.
    const PIECES: &[&str] = &[
        "x",
        "2",
        " ",
        "+",
        "^",
        "_",
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "&",
        "\\\\",
        "#",
        "%",
        "$",
        "\\frac",
        "\\sqrt",
        "\\left(",
        "\\right)",
        "\\begin{matrix}",
        "\\end{matrix}",
        "\\begin{aligned}",
        "\\end{aligned}",
        "\\text{",
        "\\def\\a{",
        "\\a",
        "#1",
        "\\mathbb{",
        "\\color{red}",
        "\\operatorname{",
        "\\over",
        "\\\\",
        "é",
        "\u{0}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn any_formula_is_mathml_or_a_one_line_reason(
            pieces in prop::collection::vec(prop::sample::select(PIECES.to_vec()), 0..24),
            block in any::<bool>(),
        ) {
            let display = if block { Display::Block } else { Display::Inline };
            match to_mathml(&pieces.concat(), display) {
                Ok(mathml) => prop_assert!(mathml.starts_with("<math ") && mathml.ends_with("</math>")),
                Err(reason) => prop_assert!(!reason.is_empty() && !reason.contains('\n')),
            }
        }
    }

    #[test]
    fn inline_and_block_formulas_become_math_elements() {
        let inline = to_mathml("x^2", Display::Inline).unwrap();
        assert!(
            inline.starts_with("<math ")
                && inline.contains(r#" xmlns="http://www.w3.org/1998/Math/MathML""#),
            "{inline}"
        );
        assert!(inline.contains("<msup>"), "{inline}");
        assert!(inline.contains("display=\"inline\""), "{inline}");
        let block = to_mathml(r"\frac{a}{b}", Display::Block).unwrap();
        assert!(block.contains("display=\"block\""), "{block}");
        assert!(block.contains("<mfrac>"), "{block}");
    }

    #[test]
    fn a_broken_formula_is_described_in_one_line() {
        let error = to_mathml(r"\frac{a", Display::Inline).unwrap_err();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains('}'), "{error}");
        let unknown = to_mathml(
            r"\def\mine{y} \mathbb{R}\, \mine + \boxed{x}",
            Display::Inline,
        );
        assert_eq!(unknown.unwrap_err(), r"`\boxed` is not a command it knows");
    }

    #[test]
    fn groups_nested_too_deep_are_refused_before_parsing() {
        let deep = format!("{}x{}", "{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(
            to_mathml(&deep, Display::Inline).unwrap_err(),
            "it nests groups 100000 deep; at most 100"
        );
        let lefts = format!("{}x{}", r"\left(".repeat(101), r"\right)".repeat(101));
        assert!(to_mathml(&lefts, Display::Block).is_err());
        assert_eq!(
            nesting_depth(r"\{ \} \\ {a{b}} \begin{matrix} {x} \end{matrix}"),
            2
        );
        let fine = format!("{}x{}", "{".repeat(100), "}".repeat(100));
        assert!(to_mathml(&fine, Display::Inline).is_ok());
    }

    #[test]
    fn commands_are_the_names_after_backslashes() {
        let names: Vec<&str> = commands(r"a \\ \alpha\,\beta_2 \é \").collect();
        assert_eq!(names, ["alpha", "beta"]);
    }

    #[test]
    fn text_in_a_formula_is_escaped() {
        let mathml = to_mathml(r"\text{<script>&}", Display::Inline).unwrap();
        assert!(mathml.contains("&lt;script&gt;&amp;"), "{mathml}");
        assert!(!mathml.contains("<script>"), "{mathml}");
    }

    #[test]
    fn a_formula_too_large_to_be_real_is_refused() {
        let error = to_mathml(&"x".repeat(MAX_EVENTS + 1), Display::Inline).unwrap_err();
        assert_eq!(
            error,
            "it is more than 20000 symbols long, or its macros expand to that"
        );
        assert!(to_mathml(&"x".repeat(MAX_EVENTS - 10), Display::Inline).is_ok());
        // A macro of ten copies of one of ten copies of … stops at the
        // parser's own expansion limits.
        let mut latex = String::from(r"\def\a{xxxxxxxxxx}");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let ten = format!(r"\{}", pair[0]).repeat(10);
            latex.push_str(&format!(r"\def\{}{{{ten}}}", pair[1]));
        }
        latex.push_str(r"\i");
        assert!(to_mathml(&latex, Display::Inline).is_err());
    }
}
