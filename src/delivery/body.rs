//! Text parts encoded once for many messages. Copies of a digest for one
//! audience differ only in the few lines that hold a subscriber's address
//! and links, so the other lines are converted to CRLF and
//! transfer-encoded once, and each message encodes only its own lines.
//!
//! Knows nothing of digests or templates: it is told which lines are
//! personal and how to fill them in. It never decides an encoding lettre
//! would not: the first message's body is checked against lettre's own,
//! and a shape that differs is not shared.

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// RFC 5322's limit on a line, without its CRLF.
const MAX_LINE: usize = 998;

/// A text part shared by many messages, each with its own values in a few lines.
pub struct SharedBody {
    /// The text with its placeholders, for a message the shape cannot serve.
    template: String,
    /// `None` when lettre would encode the text so that lines cannot be
    /// encoded alone (base64), or the first message did not come out as
    /// lettre encodes it.
    shape: Option<Shape>,
}

struct Shape {
    encoding: ContentTransferEncoding,
    pieces: Vec<Piece>,
}

enum Piece {
    /// Lines with nothing personal, encoded, line breaks included.
    Encoded(Vec<u8>),
    /// One personal line as written, without its line break.
    Personal { line: String, newline: bool },
}

impl SharedBody {
    /// `template` split at its personal lines (`is_personal`), encoded as
    /// lettre encodes the first message's body (`fill` applied to it).
    pub fn new(
        template: &str,
        is_personal: impl Fn(&str) -> bool,
        fill: impl Fn(&str) -> String,
    ) -> SharedBody {
        let first = Body::new(fill(template));
        let shape = Shape::of(template, first.encoding(), &is_personal)
            .filter(|shape| shape.body(&fill).is_some_and(|body| body == first.as_ref()));
        if shape.is_none() {
            tracing::debug!("a digest part is encoded for each message");
        }
        SharedBody {
            template: template.to_string(),
            shape,
        }
    }

    /// Whether the lines without a placeholder are encoded once for every
    /// message, not with each.
    pub fn is_shared(&self) -> bool {
        self.shape.is_some()
    }

    /// One message's body: the template with `fill` applied to its personal
    /// lines. `fill` must put no line break and no empty value in a line,
    /// so that a line filled is still one line of the text filled.
    pub fn body(&self, fill: impl Fn(&str) -> String) -> Body {
        let shaped = self.shape.as_ref().and_then(|shape| {
            let bytes = shape.body(&fill)?;
            Some(Body::dangerous_pre_encoded(bytes, shape.encoding))
        });
        shaped.unwrap_or_else(|| Body::new(fill(&self.template)))
    }
}

impl Shape {
    /// The pieces of `template` under `encoding`, if its lines can be encoded one by one.
    fn of(
        template: &str,
        encoding: ContentTransferEncoding,
        is_personal: impl Fn(&str) -> bool,
    ) -> Option<Shape> {
        if !matches!(
            encoding,
            ContentTransferEncoding::SevenBit | ContentTransferEncoding::QuotedPrintable
        ) {
            return None;
        }
        let mut pieces = Vec::new();
        let mut encoded = Vec::with_capacity(template.len() * 11 / 10);
        for (line, newline) in lines(template) {
            if is_personal(line) {
                if !encoded.is_empty() {
                    pieces.push(Piece::Encoded(std::mem::take(&mut encoded)));
                }
                let line = line.to_string();
                pieces.push(Piece::Personal { line, newline });
            } else {
                encode_line(line, newline, encoding, &mut encoded)?;
            }
        }
        if !encoded.is_empty() {
            pieces.push(Piece::Encoded(encoded));
        }
        Some(Shape { encoding, pieces })
    }

    /// The encoded body with `fill` applied to the personal lines, or
    /// `None` if a filled line cannot be sent in this encoding.
    fn body(&self, fill: impl Fn(&str) -> String) -> Option<Vec<u8>> {
        let size = self.pieces.iter().map(Piece::size).sum::<usize>();
        let mut body = Vec::with_capacity(size + 512);
        for piece in &self.pieces {
            match piece {
                Piece::Encoded(bytes) => body.extend_from_slice(bytes),
                Piece::Personal { line, newline } => {
                    encode_line(&fill(line), *newline, self.encoding, &mut body)?;
                }
            }
        }
        Some(body)
    }
}

impl Piece {
    fn size(&self) -> usize {
        match self {
            Piece::Encoded(bytes) => bytes.len(),
            Piece::Personal { line, .. } => line.len() + 2,
        }
    }
}

/// The lines of `text` as lettre reads them: split at LF, a CR before the
/// LF being part of the line break; each with whether a break ends it.
fn lines(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        Some(match text.split_once('\n') {
            Some((line, after)) => {
                rest = Some(after).filter(|after| !after.is_empty());
                (line.strip_suffix('\r').unwrap_or(line), true)
            }
            None => {
                rest = None;
                (text, false)
            }
        })
    })
}

/// Appends one line, encoded, and its CRLF if it had a line break; `None`
/// if the line cannot be sent as 7bit. Quoted-printable starts afresh at
/// every hard line break, so a line encodes the same alone as in its text.
fn encode_line(
    line: &str,
    newline: bool,
    encoding: ContentTransferEncoding,
    out: &mut Vec<u8>,
) -> Option<()> {
    match encoding {
        ContentTransferEncoding::QuotedPrintable => {
            out.extend_from_slice(&quoted_printable::encode(line));
        }
        _ if line.len() > MAX_LINE || !line.is_ascii() => return None,
        _ => out.extend_from_slice(line.as_bytes()),
    }
    if newline {
        out.extend_from_slice(b"\r\n");
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MARK: &str = "MARK";

    fn shared(template: &str) -> SharedBody {
        SharedBody::new(
            template,
            |line| line.contains(MARK),
            |t| t.replace(MARK, "first"),
        )
    }

    /// What lettre makes of the text filled with `value`.
    fn lettre(template: &str, value: &str) -> Vec<u8> {
        Body::new(template.replace(MARK, value)).as_ref().to_vec()
    }

    #[test]
    fn only_personal_lines_are_encoded_per_message() {
        let template = "Grüße, MARK!\nA long line that quoted-printable must wrap somewhere past the seventy-sixth column.\n\nUnsubscribe: https://example.org/u/MARK\n";
        let body = shared(template);
        assert!(body.is_shared());
        let shape = body.shape.as_ref().expect("a shape");
        assert_eq!(shape.encoding, ContentTransferEncoding::QuotedPrintable);
        assert_eq!(
            shape
                .pieces
                .iter()
                .filter(|p| matches!(p, Piece::Personal { .. }))
                .count(),
            2
        );
        for value in ["first", "someone.else+tag@example.com", "a=b?c%20d"] {
            let fill = |t: &str| t.replace(MARK, value);
            assert_eq!(body.body(fill).as_ref(), lettre(template, value), "{value}");
        }
    }

    #[test]
    fn ascii_short_lines_stay_seven_bit() {
        let template = "Hello MARK\r\nsecond line\n";
        let body = shared(template);
        let shape = body.shape.as_ref().expect("a shape");
        assert_eq!(shape.encoding, ContentTransferEncoding::SevenBit);
        let fill = |t: &str| t.replace(MARK, "x@example.org");
        assert_eq!(
            body.body(fill).as_ref(),
            b"Hello x@example.org\r\nsecond line\r\n"
        );
        // A value too long for a 7bit line is encoded as lettre chooses.
        let long = "y".repeat(2000);
        let fill = |t: &str| t.replace(MARK, &long);
        assert_eq!(body.body(fill).as_ref(), lettre(template, &long));
    }

    #[test]
    fn text_lettre_sends_as_base64_is_encoded_per_message() {
        let template = "שלום MARK עולם שלום עולם שלום עולם\n";
        let body = shared(template);
        assert!(!body.is_shared());
        let fill = |t: &str| t.replace(MARK, "z");
        assert_eq!(body.body(fill).as_ref(), lettre(template, "z"));
    }

    fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("\r".to_string()),
            Just("=".to_string()),
            Just("é".to_string()),
            Just("—".to_string()),
            Just(MARK.to_string()),
            "[a-z]{1,90}",
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
    }

    /// `text` as it goes in a message before transfer encoding: CRLF lines.
    fn crlf(text: &str) -> Vec<u8> {
        Body::new_with_encoding(text.to_string(), ContentTransferEncoding::Binary)
            .expect("binary takes anything")
            .as_ref()
            .to_vec()
    }

    proptest! {
        /// Byte for byte what lettre sends when it would choose the same
        /// encoding for this message; the same text in any case.
        #[test]
        fn every_message_is_what_lettre_would_send(
            template in text(),
            value in "[a-zA-Z0-9@.=?%/:-]{1,120}",
        ) {
            let body = shared(&template);
            let filled = template.replace(MARK, &value);
            let ours = body.body(|t: &str| t.replace(MARK, &value));
            let theirs = Body::new(filled.clone());
            if ours.encoding() == theirs.encoding() {
                prop_assert_eq!(ours.as_ref(), theirs.as_ref());
            } else {
                let decoded = match ours.encoding() {
                    ContentTransferEncoding::QuotedPrintable => {
                        quoted_printable::decode(ours.as_ref(), quoted_printable::ParseMode::Strict)
                            .expect("valid quoted-printable")
                    }
                    _ => ours.as_ref().to_vec(),
                };
                prop_assert_eq!(decoded, crlf(&filled));
            }
        }
    }
}
