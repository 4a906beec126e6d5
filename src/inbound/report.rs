//! Reading one message that came back into a [`Report`]: its own headers,
//! the machine-readable parts of a delivery status notification (RFC 3464)
//! or an abuse report (RFC 5965), the headers of the message it returns, and
//! its human-readable text.
//!
//! This module only reads; what a report means is `classify`'s job. It must
//! stay safe on hostile input: the size is capped before parsing, the MIME
//! parser stops at 100 levels of nesting, and the text kept is capped too.

use mailparse::{MailHeaderMap, ParsedMail};
use sha2::{Digest as _, Sha256};

/// Messages larger than this are not parsed: no report, bounce or complaint
/// is anywhere near it, and parsing is linear but not free.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// How much human-readable text a report keeps for phrase matching.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// More parts than this is not a report a mail server wrote.
const MAX_PARTS: usize = 1_000;

/// How much of a delivery-status part, and of one diagnostic, is read: a
/// real one is a few hundred bytes, and every later step is linear in it.
const MAX_STATUS_BYTES: usize = 256 * 1024;
const MAX_DIAGNOSTIC_BYTES: usize = 4 * 1024;

/// Header fields in the order they came, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(block: &[u8]) -> Fields {
        match mailparse::parse_headers(block) {
            Ok((headers, _)) => Fields(
                headers
                    .iter()
                    .map(|h| (h.get_key().to_ascii_lowercase(), h.get_value()))
                    .collect(),
            ),
            Err(_) => Fields::default(),
        }
    }

    /// The first field called `name` (lower case), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    }

    /// Every field called `name` (lower case), trimmed.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.trim())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One recipient's block of a delivery status notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient` (or `Original-Recipient`), without its `rfc822;` type.
    pub recipient: Option<String>,
    /// `Action`, lower case: failed, delayed, delivered, relayed, expanded.
    pub action: Option<String>,
    /// `Status`: the enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, without its `smtp;` type.
    pub diagnostic: Option<String>,
}

/// What a message that came back says, before anyone decides what it means.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Its `Message-ID`, or a hash of its bytes: what makes a replay idempotent.
    pub message_id: String,
    /// The message's own header fields.
    pub headers: Fields,
    /// The top-level MIME type and its `report-type`, lower case.
    pub content_type: String,
    pub report_type: Option<String>,
    /// Per-recipient blocks of a `message/delivery-status` part.
    pub recipients: Vec<RecipientStatus>,
    /// The fields of a `message/feedback-report` part (RFC 5965).
    pub feedback: Option<Fields>,
    /// The headers of the message it returns (`message/rfc822` or `text/rfc822-headers`).
    pub returned: Option<Fields>,
    /// Its human-readable text, capped.
    pub text: String,
}

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the message is {0} bytes, over the {MAX_MESSAGE_BYTES}-byte limit for mail that comes back"
    )]
    TooLarge(usize),
    #[error("the message is not valid MIME: {0}")]
    Malformed(String),
    #[error("the message has more than {MAX_PARTS} MIME parts")]
    TooManyParts,
}

impl Report {
    /// Reads `raw`; never panics, whatever it holds.
    pub fn read(raw: &[u8]) -> Result<Report, ReportError> {
        if raw.len() > MAX_MESSAGE_BYTES {
            return Err(ReportError::TooLarge(raw.len()));
        }
        let mail = mailparse::parse_mail(raw).map_err(|e| ReportError::Malformed(e.to_string()))?;
        let mut report = Report {
            message_id: message_id(&mail, raw),
            headers: Fields(
                mail.headers
                    .iter()
                    .map(|h| (h.get_key().to_ascii_lowercase(), h.get_value()))
                    .collect(),
            ),
            content_type: mail.ctype.mimetype.to_ascii_lowercase(),
            report_type: mail
                .ctype
                .params
                .get("report-type")
                .map(|t| t.to_ascii_lowercase()),
            ..Report::default()
        };
        let parts: Vec<&ParsedMail<'_>> = mail.parts().take(MAX_PARTS + 1).collect();
        if parts.len() > MAX_PARTS {
            return Err(ReportError::TooManyParts);
        }
        for part in parts {
            report.read_part(part);
        }
        if report.recipients.is_empty() {
            report.recipients = embedded_delivery_status(raw);
        }
        if report.text.trim().is_empty() {
            // A structure that hides every part: read the body as it is.
            let body =
                String::from_utf8_lossy(&mail.get_body_raw().unwrap_or_default()).into_owned();
            report.text = truncate(&body, MAX_TEXT_BYTES).to_string();
        }
        Ok(report)
    }

    fn read_part(&mut self, part: &ParsedMail<'_>) {
        let mimetype = part.ctype.mimetype.to_ascii_lowercase();
        match mimetype.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                self.recipients.extend(recipient_blocks(&body_bytes(part)));
            }
            "message/feedback-report" => {
                self.feedback
                    .get_or_insert_with(|| Fields::parse(&body_bytes(part)));
            }
            "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global-headers"
                if self.returned.is_none() =>
            {
                self.returned = Some(Fields::parse(&body_bytes(part)));
            }
            _ if part.subparts.is_empty() && mimetype.starts_with("text/") => self.add_text(part),
            // The preamble before the first part, where some servers say why.
            _ if mimetype.starts_with("multipart/") => self.add_text(part),
            _ => {}
        }
    }

    fn add_text(&mut self, part: &ParsedMail<'_>) {
        if is_attachment(part) || self.text.len() >= MAX_TEXT_BYTES {
            return;
        }
        let body = part.get_body().unwrap_or_default();
        let body = if part.ctype.mimetype.eq_ignore_ascii_case("text/html") {
            strip_tags(&body)
        } else {
            body
        };
        let room = MAX_TEXT_BYTES - self.text.len();
        self.text.push_str(truncate(&body, room));
        self.text.push('\n');
    }

    /// What names a message without a usable `Message-ID`: a hash of its bytes.
    pub fn fallback_id(raw: &[u8]) -> String {
        let hash = Sha256::digest(raw);
        let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The first of the message's own fields called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

fn message_id(mail: &ParsedMail<'_>, raw: &[u8]) -> String {
    match mail.headers.get_first_value("Message-ID") {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => Report::fallback_id(raw),
    }
}

/// A part's body with its transfer encoding undone; charset left alone,
/// since report fields are ASCII (or UTF-8 in the `global` variants).
fn body_bytes(part: &ParsedMail<'_>) -> Vec<u8> {
    part.get_body_raw().unwrap_or_default()
}

fn is_attachment(part: &ParsedMail<'_>) -> bool {
    matches!(
        part.get_content_disposition().disposition,
        mailparse::DispositionType::Attachment
    )
}

/// The per-recipient blocks of a `message/delivery-status` body: blocks of
/// fields separated by blank lines, the first being per-message.
fn recipient_blocks(body: &[u8]) -> Vec<RecipientStatus> {
    let body = &body[..body.len().min(MAX_STATUS_BYTES)];
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .map(|block| Fields::parse(format!("{}\n\n", block.trim_start()).as_bytes()))
        .filter(|fields| {
            fields.get("final-recipient").is_some()
                || fields.get("original-recipient").is_some()
                || fields.get("action").is_some()
        })
        .map(|fields| RecipientStatus {
            recipient: fields
                .get("final-recipient")
                .or_else(|| fields.get("original-recipient"))
                .map(without_type),
            action: fields.get("action").map(|a| a.to_ascii_lowercase()),
            status: fields.get("status").map(|s| s.to_string()),
            diagnostic: fields
                .get("diagnostic-code")
                .map(|d| truncate(&without_type(d), MAX_DIAGNOSTIC_BYTES).to_string()),
        })
        .collect()
}

/// A delivery-status part the MIME structure hides: a boundary that does
/// not match its header, or a bounce forwarded inside another message.
fn embedded_delivery_status(raw: &[u8]) -> Vec<RecipientStatus> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let lower = text.to_ascii_lowercase();
    let Some(at) = lower.find("content-type: message/delivery-status") else {
        return Vec::new();
    };
    let Some(body_start) = text[at..].find("\n\n").map(|i| at + i + 2) else {
        return Vec::new();
    };
    let body = &text[body_start..];
    let end = body.find("\n--").unwrap_or(body.len());
    recipient_blocks(&body.as_bytes()[..end])
}

/// `rfc822; ada@example.org` → `ada@example.org`; `smtp; 550 …` → `550 …`.
fn without_type(value: &str) -> String {
    let value = match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') && !kind.contains('@') => rest,
        _ => value,
    };
    value.trim().trim_matches(['<', '>']).to_string()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// HTML to rough text: enough for phrase matching, not for display.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r\n\
To: bounces+d1-2-00@shorts.example.org\r\n\
Message-ID: <dsn-1@mx.example.net>\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; gone@example.net\r\n\
Original-Recipient: rfc822;gone@example.net\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address\r\n\
\x20rejected: User unknown\r\n\
\r\n\
--B\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Return-Path: <bounces+d1-2-00@shorts.example.org>\r\n\
Subject: This week\r\n\
\r\n\
--B--\r\n";

    #[test]
    fn reads_the_fields_of_a_delivery_status_notification() {
        let report = Report::read(DSN.as_bytes()).unwrap();
        assert_eq!(report.message_id, "<dsn-1@mx.example.net>");
        assert_eq!(report.content_type, "multipart/report");
        assert_eq!(report.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(
            report.recipients,
            [RecipientStatus {
                recipient: Some("gone@example.net".into()),
                action: Some("failed".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some(
                    "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown".into()
                ),
            }]
        );
        let returned = report.returned.unwrap();
        assert_eq!(
            returned.get("return-path"),
            Some("<bounces+d1-2-00@shorts.example.org>")
        );
        assert!(report.text.contains("could not be delivered"));
    }

    #[test]
    fn hostile_messages_are_refused_not_crashed_on() {
        let huge = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(Report::read(&huge), Err(ReportError::TooLarge(_))));
        let mut many = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..10_000 {
            many.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        many.push_str("--b--\r\n");
        assert_eq!(
            Report::read(many.as_bytes()).unwrap_err(),
            ReportError::TooManyParts
        );
        let mut deep = String::new();
        for i in 0..5_000 {
            deep.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
            ));
        }
        assert!(matches!(
            Report::read(deep.as_bytes()),
            Err(ReportError::Malformed(_))
        ));
        // No Message-ID: the bytes name it, the same bytes the same way.
        let plain = Report::read(b"Subject: hi\r\n\r\nbody").unwrap();
        assert!(plain.message_id.starts_with("sha256:"));
        assert_eq!(
            plain.message_id,
            Report::read(b"Subject: hi\r\n\r\nbody").unwrap().message_id
        );
    }

    #[test]
    fn html_only_text_is_kept_without_its_tags() {
        let report = Report::read(
            b"Content-Type: text/html\r\n\r\n<p>Your message to <b>x@example.net</b> couldn&amp;t be delivered</p>",
        )
        .unwrap();
        assert!(report.text.contains("Your message to  x@example.net"));
    }
}
