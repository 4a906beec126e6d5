//! What a [`Report`] means: a hard or soft bounce, a complaint, an
//! unsubscribe request, an auto-reply, or something we do not recognise.
//!
//! The rule that matters most is to never call a bounce hard unless the
//! address itself is gone: a hard bounce ends a subscription at once, so
//! mailbox-full, blocked-as-spam, policy and rate-limit rejections — all
//! permanent (5.x.x) in SMTP terms — are soft here, as they are in Sisimai,
//! the reference bounce analyser whose corpus `tests/inbound_corpus.rs` runs.
//! Only the structure of the message and its words are read; matching a
//! report to a subscriber and acting on it is `act`'s job.

use super::report::{RecipientStatus, Report};

/// What a message that came back is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The address does not exist (any more): stop mailing it now.
    HardBounce,
    /// Delivery failed for a reason that may pass (full, blocked, delayed).
    SoftBounce,
    /// The reader reported the message as spam (RFC 5965).
    Complaint,
    /// The reader asked to leave by mail (`List-Unsubscribe` mailto).
    Unsubscribe,
    /// An out-of-office or other automatic reply (RFC 3834): nothing to do.
    AutoReply,
    /// A report that the message was delivered or relayed: nothing to do.
    Delivered,
    /// Not something we can act on safely; kept for a person to read.
    Unrecognised(String),
}

impl Verdict {
    /// The name events are recorded under.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::HardBounce => "hard_bounce",
            Verdict::SoftBounce => "soft_bounce",
            Verdict::Complaint => "complaint",
            Verdict::Unsubscribe => "unsubscribe",
            Verdict::AutoReply => "auto_reply",
            Verdict::Delivered => "delivered",
            Verdict::Unrecognised(_) => "unrecognised",
        }
    }
}

/// A verdict about one recipient, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    /// The address the report is about, when it says.
    pub recipient: Option<String>,
    /// The enhanced status code (`5.1.1`) or SMTP reply code found.
    pub status: Option<String>,
    /// The server's words, one line, capped.
    pub diagnostic: String,
}

impl Finding {
    pub fn unrecognised(reason: &str) -> Finding {
        Finding::of(Verdict::Unrecognised(reason.to_string()))
    }

    pub fn of(verdict: Verdict) -> Finding {
        Finding {
            verdict,
            recipient: None,
            status: None,
            diagnostic: String::new(),
        }
    }
}

/// Every finding in `report`, one per recipient it names; never empty.
pub fn classify(report: &Report) -> Vec<Finding> {
    if let Some(complaint) = complaint(report) {
        return vec![complaint];
    }
    if report.text.contains("notificationType")
        && let Some(findings) = super::ses::findings(&report.text)
    {
        return findings;
    }
    let from_status: Vec<Finding> = report
        .recipients
        .iter()
        .map(|block| from_delivery_status(report, block))
        .collect();
    if !from_status.is_empty() {
        return from_status;
    }
    // First: Apple Mail marks its List-Unsubscribe requests `auto-replied`.
    if is_unsubscribe_request(report) {
        return vec![Finding::of(Verdict::Unsubscribe)];
    }
    // Before the text bounce, since a vacation reply may come from the null
    // sender too (`is_auto_reply` knows that Exim and Postfix mark their
    // bounces `auto-replied`).
    if is_auto_reply(report) {
        return vec![Finding::of(Verdict::AutoReply)];
    }
    if is_bounce(report) || is_null_sender(report) {
        return from_text(report);
    }
    vec![Finding::of(Verdict::Unrecognised(
        "not a delivery report, abuse report, auto-reply or unsubscribe request".into(),
    ))]
}

/// An abuse report (RFC 5965), or a feedback-loop message that returns the
/// original with a complaint subject.
fn complaint(report: &Report) -> Option<Finding> {
    let is_arf =
        report.report_type.as_deref() == Some("feedback-report") || report.feedback.is_some();
    if !is_arf {
        return microsoft_complaint(report);
    }
    let fields = report.feedback.clone().unwrap_or_default();
    let kind = fields
        .get("feedback-type")
        .unwrap_or("abuse")
        .to_ascii_lowercase();
    let recipient = fields
        .get("original-rcpt-to")
        .or_else(|| fields.get("removal-recipient"))
        .map(|r| r.trim_matches(['<', '>']).to_string());
    let verdict = if kind == "not-spam" {
        Verdict::Unrecognised("a not-spam feedback report: nothing to undo".into())
    } else {
        Verdict::Complaint
    };
    Some(Finding {
        verdict,
        recipient,
        status: None,
        diagnostic: format!("feedback type {kind}"),
    })
}

/// Microsoft's feedback loop (JMRP) returns the reported message whole,
/// marked with the header naming its recipient, instead of an ARF report.
fn microsoft_complaint(report: &Report) -> Option<Finding> {
    let recipient = report.returned.as_ref()?.get("x-hmxmroriginalrecipient")?;
    Some(Finding {
        verdict: Verdict::Complaint,
        recipient: Some(recipient.to_string()),
        status: None,
        diagnostic: "feedback type abuse (Microsoft JMRP)".into(),
    })
}

fn is_auto_reply(report: &Report) -> bool {
    let auto_submitted = report
        .header("auto-submitted")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    if is_bounce(report) {
        return false;
    }
    if auto_submitted.starts_with("auto-replied")
        || report.header("x-autoreply").is_some()
        || report.header("x-autorespond").is_some()
        || report
            .header("precedence")
            .is_some_and(|p| p.eq_ignore_ascii_case("auto_reply"))
    {
        return true;
    }
    let subject = report.header("subject").unwrap_or("").to_ascii_lowercase();
    !is_bounce(report) && AUTO_REPLY_SUBJECTS.iter().any(|s| subject.contains(s))
}

const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic reply",
    "auto response",
    "autoresponse",
    "away from",
    "vacation",
    "on leave",
    "away until",
];

fn from_delivery_status(report: &Report, block: &RecipientStatus) -> Finding {
    let action = block.action.as_deref().unwrap_or("failed");
    let diagnostic = one_line(block.diagnostic.as_deref().unwrap_or(""));
    let field_status = block.status.as_deref().and_then(enhanced_status);
    let status = field_status
        .clone()
        .or_else(|| enhanced_status(&diagnostic));
    let context = if report.recipients.len() == 1 {
        before_returned_copy(&report.text)
    } else {
        ""
    };
    let verdict = match action {
        "delivered" | "relayed" | "expanded" | "deliverable" => Verdict::Delivered,
        _ if status.as_deref().is_some_and(|s| s.starts_with('2')) => Verdict::Delivered,
        "delayed" => Verdict::SoftBounce,
        _ => bounce_verdict(&Evidence {
            statuses: field_status
                .into_iter()
                .chain(all_statuses(&diagnostic))
                .collect(),
            // A DSN without words of its own: the text part says why.
            words: if diagnostic.is_empty() {
                context
            } else {
                &diagnostic
            },
            context,
        }),
    };
    Finding {
        verdict,
        recipient: block.recipient.clone(),
        status: status.or_else(|| reply_code(&diagnostic)),
        diagnostic: cap(&diagnostic),
    }
}

/// A bounce written only in words (qmail, old sendmail, Exchange, webmail):
/// one finding per recipient paragraph when it names several, else one.
fn from_text(report: &Report) -> Vec<Finding> {
    let text = before_returned_copy(&report.text);
    let segments = recipient_segments(text);
    if segments.len() > 1 {
        return segments
            .into_iter()
            .map(|(recipient, words)| text_finding(words, Some(recipient)))
            .collect();
    }
    let recipient = report
        .header("x-failed-recipients")
        .map(|r| r.split(',').next().unwrap_or(r).trim().to_string());
    vec![text_finding(text, recipient)]
}

fn text_finding(words: &str, recipient: Option<String>) -> Finding {
    let verdict = bounce_verdict(&Evidence {
        statuses: all_statuses(words),
        words,
        context: words,
    });
    Finding {
        verdict,
        recipient,
        status: enhanced_status(words).or_else(|| reply_code(words)),
        diagnostic: cap(&one_line(&diagnostic_lines(words))),
    }
}

/// The paragraphs of a text bounce that each begin with the address they
/// are about: `<a@b>: …` (qmail), `a@b: …` (OpenSMTPD), or the address on
/// a line of its own (Exim), each up to the next address or blank line.
fn recipient_segments(text: &str) -> Vec<(String, &str)> {
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(address) = leading_address(line.trim())
            && !starts
                .iter()
                .any(|(_, seen)| seen.eq_ignore_ascii_case(&address))
        {
            starts.push((offset, address));
        }
        offset += line.len();
    }
    let ends = starts.iter().skip(1).map(|(at, _)| *at).chain([text.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|((start, address), end)| {
            // A paragraph ends the segment too: what follows is boilerplate.
            let segment = &text[*start..end];
            let paragraph = segment.find("\n\n").map_or(segment, |at| &segment[..at]);
            (address.clone(), paragraph)
        })
        .collect()
}

fn leading_address(line: &str) -> Option<String> {
    let (candidate, rest) = match line.strip_prefix('<') {
        Some(inner) => {
            let (address, rest) = inner.split_once('>')?;
            (address, rest)
        }
        None => line.split_at(line.find([':', ' ']).unwrap_or(line.len())),
    };
    let rest = rest.trim_start();
    let is_address = candidate.contains('@')
        && !candidate.contains(char::is_whitespace)
        && candidate.len() < 255;
    (is_address && (rest.is_empty() || rest.starts_with(':')))
        .then(|| candidate.trim_matches('"').to_string())
}

/// The verdict on a failed delivery given only its status and the
/// server's words (what relays' webhooks report).
pub fn judge_failure(status: Option<&str>, diagnostic: &str) -> Verdict {
    let statuses = status
        .and_then(enhanced_status)
        .into_iter()
        .chain(all_statuses(diagnostic))
        .collect();
    bounce_verdict(&Evidence {
        statuses,
        words: diagnostic,
        context: "",
    })
}

/// What a failed delivery is judged on.
struct Evidence<'a> {
    /// Every enhanced status code the report gives for the recipient.
    statuses: Vec<String>,
    /// The server's words about this recipient.
    words: &'a str,
    /// The report's own text, before the returned copy, when it is about
    /// this recipient alone (else empty).
    context: &'a str,
}

/// The SMTP command a refusal answered, where the report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    MailFrom,
    RcptTo,
    Data,
}

/// Hard only when the status or the words say the address is gone and
/// nothing says the failure is about something else: the mailbox or the
/// message, the sender, the stage (a refusal of the sender or after DATA is
/// not about the address, whatever it says), or a receiver known to say
/// "unknown user" when it means "filtered".
fn bounce_verdict(evidence: &Evidence<'_>) -> Verdict {
    let words = evidence.words.to_ascii_lowercase();
    let context = evidence.context.to_ascii_lowercase();
    let stage = said_stage(&words).or_else(|| said_stage(&context));
    let transcript = transcript_stage(&words).or_else(|| transcript_stage(&context));
    let temporary = evidence.statuses.iter().any(|s| s.starts_with('4'));
    let about_something_else = SOFT_PHRASES.iter().any(|p| words.contains(p))
        || MAILBOX_PHRASES
            .iter()
            .any(|p| words.contains(p) || context.contains(p))
        || matches!(stage.or(transcript), Some(Stage::MailFrom | Stage::Data));
    let filtering_receiver = FILTERED_AS_UNKNOWN.iter().any(|p| words.contains(p));
    if temporary || filtering_receiver {
        return Verdict::SoftBounce;
    }
    // Before the stage: these receivers refuse unknown addresses after DATA.
    if RECEIVER_SAYS_GONE.iter().any(|p| words.contains(p)) {
        return Verdict::HardBounce;
    }
    if about_something_else {
        return Verdict::SoftBounce;
    }
    let says_gone = HARD_PHRASES
        .iter()
        .chain(UNMISTAKABLE_PHRASES)
        .any(|p| words.contains(p));
    let specific: Vec<&str> = evidence
        .statuses
        .iter()
        .map(String::as_str)
        .filter(|s| !is_generic(s))
        .collect();
    // Not from a pipelined transcript: there a vague status after DATA is a filter's.
    let pipelined = is_pipelined(&context) || is_pipelined(&words);
    let at_rcpt = stage == Some(Stage::RcptTo) || (transcript == Some(Stage::RcptTo) && !pipelined);
    let gone = if specific.is_empty() {
        UNMISTAKABLE_PHRASES.iter().any(|p| words.contains(p)) || (at_rcpt && says_gone)
    } else {
        specific
            .iter()
            .all(|s| HARD_STATUSES.contains(s) || gone_with_words(s, stage, &words, says_gone))
    };
    if gone {
        Verdict::HardBounce
    } else {
        Verdict::SoftBounce
    }
}

/// Statuses that mean "gone" only when the words say so: other address
/// statuses (5.1.x, not the sender's 5.1.7 and 5.1.8), and a disabled
/// mailbox (5.2.1) refused at RCPT as unknown.
fn gone_with_words(status: &str, stage: Option<Stage>, words: &str, says_gone: bool) -> bool {
    let sender = matches!(status, "5.1.7" | "5.1.8" | "5.1.0");
    let refused_at_rcpt = stage == Some(Stage::RcptTo);
    (status.starts_with("5.1.") && !sender && says_gone)
        || (status == "5.1.0" && words.contains("#5.1.0 address rejected"))
        || (status == "5.2.1" && refused_at_rcpt && words.contains("user unknown"))
        // Microsoft 365's directory check: the address is not in the tenant.
        || (status == "5.4.1" && words.contains("recipient address rejected: access denied"))
}

/// Which command the first refusal answered, where the server says so:
/// Postfix "in reply to RCPT TO command", Exim "after RCPT TO".
fn said_stage(text: &str) -> Option<Stage> {
    let flat = one_line(text);
    const SAID: &[(&str, Stage)] = &[
        ("in reply to rcpt to command", Stage::RcptTo),
        ("did not like our rcpt to", Stage::RcptTo),
        ("most progress was rcpt to", Stage::RcptTo),
        ("does not like recipient", Stage::RcptTo),
        ("after rcpt command", Stage::RcptTo),
        ("smtp:rcpt host", Stage::RcptTo),
        ("[rcpt_to]", Stage::RcptTo),
        ("after rcpt to", Stage::RcptTo),
        ("in reply to end of data command", Stage::Data),
        ("in reply to data command", Stage::Data),
        ("after end of data", Stage::Data),
        ("after data", Stage::Data),
        ("in reply to mail from command", Stage::MailFrom),
        ("after mail from", Stage::MailFrom),
    ];
    let said = SAID
        .iter()
        .filter_map(|(phrase, stage)| flat.find(phrase).map(|at| (at, *stage)))
        .min_by_key(|(at, _)| *at);
    said.map(|(_, stage)| stage)
}

/// The same from a session transcript (sendmail, Courier): `>>> RCPT To:`
/// then `<<< 550 …`.
fn transcript_stage(text: &str) -> Option<Stage> {
    let mut last = None;
    for line in text.lines().map(str::trim_start) {
        if let Some(command) = line.strip_prefix(">>> ") {
            last = match command.get(..4) {
                Some("mail") => Some(Stage::MailFrom),
                Some("rcpt") => Some(Stage::RcptTo),
                _ if command.starts_with("data") || command.starts_with('.') => Some(Stage::Data),
                _ => None,
            };
        } else if line.starts_with("<<< 5") || line.starts_with("<<< 4") {
            // With pipelining, sendmail prints RCPT's refusal after DATA,
            // then DATA's own "503 Need RCPT".
            if last == Some(Stage::Data) && is_pipelined(text) {
                return Some(Stage::RcptTo);
            }
            return last;
        }
    }
    None
}

/// Whether a transcript shows pipelining: the refusal printed after DATA
/// was RCPT's, as DATA's own answer ("need RCPT") says.
fn is_pipelined(text: &str) -> bool {
    [
        "need rcpt",
        "rcpt commands were rejected",
        "valid rcpt command must precede data",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// `5.0.0`, `5.3.0`, `5.5.0`: "failed" and nothing more.
fn is_generic(status: &str) -> bool {
    matches!(status.get(1..), Some(".0.0" | ".3.0" | ".5.0"))
}

/// Words about the mailbox rather than the address, trusted even in the
/// report's general text.
const MAILBOX_PHRASES: &[&str] = &[
    "disk space",
    "quota",
    "mailbox full",
    "mailbox is full",
    "insufficient",
];

/// Receivers' own words for "no such address", which they may say after
/// DATA: au (and its UQ mobile) naming the address, Yahoo's "dd" code,
/// Orange, Verizon's MMS gateway.
const RECEIVER_SAYS_GONE: &[&str] = &[
    "@ezweb.ne.jp>: user unknown",
    "@au.com>: user unknown",
    "@uqmobile.jp>: user unknown",
    "@ne.auone-net.jp>: recipient address rejected",
    "dd this user doesn't have a",
    "adresse destinataire invalide",
    "no valid recipients for this mm",
];

/// A refusal that names no address: a mobile carrier's (au's) way of
/// saying its reader's filter refused the sender.
const FILTERED_AS_UNKNOWN: &[&str] = &["550 : user unknown", "550: : user unknown"];

/// Enhanced status codes (RFC 3463) that mean the address does not exist:
/// bad mailbox, bad domain, bad syntax, moved, and a null MX (RFC 7505).
/// 5.4.4 is "unable to route": the domain has no mail server at all.
const HARD_STATUSES: &[&str] = &["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.4.4"];

/// Words servers use for "no such address" when their status code is vague.
const HARD_PHRASES: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no such address",
    "unknown recipient",
    "recipient unknown",
    "invalid recipient",
    "invalid mailbox",
    "mailbox not found",
    "user not found",
    "recipient not found",
    "address not found",
    "does not exist",
    "doesn't exist",
    "no mailbox here by that name",
    "unrouteable address",
    "unknown local part",
    "not a valid mailbox",
    "is not a known user",
    "address unknown",
    "bad destination mailbox",
    "couldn't be found",
    "could not be found",
    "was not found",
    "host unknown",
    "host not found",
    "domain not found",
    "no such domain",
    "unknown domain",
    "host or domain name not found",
];

/// Words only a mail server's own recipient check writes; with no status
/// code, filtering gateways' "unknown user" is too often a content refusal.
const UNMISTAKABLE_PHRASES: &[&str] = &[
    "no mailbox here by that name",
    "in virtual mailbox table",
    "in virtual alias table",
    "unrouteable address",
    "host or domain name not found",
    "recipient name is not recognized",
    "not listed in domino directory",
    "not listed in public name & address book",
    "domain does not exist",
    "no such domain",
    "550 host unknown",
    "unknown host",
    // Outlook.com's own refusal, with its internal code in brackets.
    "mailbox unavailable (-",
    "dns lookup failure",
    "no mx record found",
    "indicated no smtp service",
    "host does not accept mail",
    "invalid final delivery userid",
    "dd this user doesn't have a",
    "address couldn't be found",
    "unknown user:",
    "the domain is not reachable",
];

/// Words that make a permanent failure about something other than the
/// address: the mailbox is full or disabled, the message or the sender was
/// refused, or the receiver is limiting us.
const SOFT_PHRASES: &[&str] = &[
    "quota",
    "mailbox full",
    "mailbox is full",
    "mailfolder is full",
    "insufficient",
    "over the limit",
    "exceeded",
    "too large",
    "too big",
    "size limit",
    "spam",
    "blocked",
    "block list",
    "blocklist",
    "blacklist",
    "denylist",
    "reputation",
    "policy",
    "rate limit",
    "too many",
    "temporar",
    "disabled",
    "inactive",
    "suspended",
    "expired",
    "virus",
    "dmarc",
    "spf",
    "not authorized",
    "malformed",
    "relay access denied",
    "relaying denied",
    "disk space",
    "refused due to",
    "procmail",
    "couldn't create",
];

/// The text before the copy of the original message a bounce quotes, which
/// says nothing about the failure and may contain any words at all.
fn before_returned_copy(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let end = RETURNED_COPY_MARKERS
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

const RETURNED_COPY_MARKERS: &[&str] = &[
    "----- original message",
    "original message follows",
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message headers",
    "------ original message",
    "--- the header of the original message",
];

/// The first `x.y.z` status code with class 2, 4 or 5 in `text`.
fn enhanced_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('.') {
        let Some(start) = i.checked_sub(1) else {
            continue;
        };
        if !matches!(bytes[start], b'2' | b'4' | b'5')
            || (start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.'))
        {
            continue;
        }
        let rest = &text[i + 1..];
        let subject: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after_subject = &rest[subject.len()..];
        let Some(detail_text) = after_subject.strip_prefix('.') else {
            continue;
        };
        let detail: String = detail_text
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let tail = detail_text[detail.len()..].chars().next();
        let valid = (1..=3).contains(&subject.len())
            && (1..=3).contains(&detail.len())
            && !tail.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        if valid {
            return Some(format!("{}.{subject}.{detail}", bytes[start] as char));
        }
    }
    None
}

/// Every enhanced status code in `text`, in order.
fn all_statuses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(status) = enhanced_status(rest) {
        let Some(at) = rest.find(&status) else { break };
        rest = &rest[at + status.len()..];
        found.push(status);
    }
    found
}

/// The first SMTP reply code (`550`, `452`) at the start of a word.
fn reply_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|word| {
            word.len() == 3
                && matches!(word.as_bytes()[0], b'4' | b'5')
                && word.as_bytes()[1] <= b'5'
        })
        .map(str::to_string)
}

/// The lines of a text bounce that carry a code or an address: the
/// diagnostic a person would look for.
fn diagnostic_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| {
            line.contains('@') || enhanced_status(line).is_some() || reply_code(line).is_some()
        })
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a message with no delivery-status part is a bounce: it comes
/// from a mailer daemon or says so in its subject or headers.
fn is_bounce(report: &Report) -> bool {
    let from = report.header("from").unwrap_or("").to_ascii_lowercase();
    let subject = report.header("subject").unwrap_or("").to_ascii_lowercase();
    report.header("x-failed-recipients").is_some()
        || report.report_type.as_deref() == Some("delivery-status")
        || BOUNCE_SENDERS.iter().any(|s| from.contains(s))
        || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// The null return path of every bounce, and of some auto-replies.
fn is_null_sender(report: &Report) -> bool {
    report
        .header("return-path")
        .is_some_and(|r| r.trim() == "<>")
}

const BOUNCE_SENDERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail delivery",
    "mail administrator",
];

const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery failure",
    "delivery has failed",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "non-delivery",
    "nondeliverable",
    "delivery problem",
    "could not send message",
    "mail system error",
    "rejected",
];

/// A message asking to leave: its subject starts with "unsubscribe".
fn is_unsubscribe_request(report: &Report) -> bool {
    report
        .header("subject")
        .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("unsubscribe"))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cap(text: &str) -> String {
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_enhanced_status_codes_and_reply_codes() {
        assert_eq!(
            enhanced_status("550 5.1.1 <x@y>: no").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("#5.1.10 null MX").as_deref(),
            Some("5.1.10")
        );
        assert_eq!(enhanced_status("(#5.5.0)").as_deref(), Some("5.5.0"));
        assert_eq!(enhanced_status("version 15.1.2044.4"), None);
        assert_eq!(enhanced_status("at 192.0.2.4 port"), None);
        assert_eq!(enhanced_status("in 5 minutes."), None);
        assert_eq!(
            reply_code("remote host said: 550 Unknown").as_deref(),
            Some("550")
        );
        assert_eq!(reply_code("port 5821"), None);
    }

    fn verdict(status: Option<&str>, words: &str) -> Verdict {
        bounce_verdict(&Evidence {
            statuses: status.into_iter().map(String::from).collect(),
            words,
            context: "",
        })
    }

    #[test]
    fn only_a_gone_address_is_a_hard_bounce() {
        assert_eq!(verdict(Some("5.1.1"), "User unknown"), Verdict::HardBounce);
        assert_eq!(
            verdict(
                None,
                "550 5.0.0 <a@example.net>: No such user here (in reply to RCPT TO command)"
            ),
            Verdict::HardBounce,
            "refused at RCPT as unknown"
        );
        assert_eq!(
            verdict(None, "550 No such user here"),
            Verdict::SoftBounce,
            "filtering gateways say this of messages they refuse"
        );
        assert_eq!(
            verdict(
                Some("5.0.0"),
                "550 Unknown user a@example.net (in reply to end of DATA command)"
            ),
            Verdict::SoftBounce,
            "after DATA it is a content filter talking"
        );
        assert_eq!(
            verdict(Some("5.4.4"), "Host not found"),
            Verdict::HardBounce
        );
        assert_eq!(verdict(Some("5.2.2"), "Mailbox full"), Verdict::SoftBounce);
        assert_eq!(
            verdict(
                Some("5.1.1"),
                "5.1.1 mailbox disabled, not accepting messages"
            ),
            Verdict::SoftBounce,
            "a disabled mailbox may come back"
        );
        assert_eq!(
            verdict(Some("5.7.1"), "Message rejected as spam"),
            Verdict::SoftBounce
        );
        assert_eq!(verdict(Some("4.1.1"), "User unknown"), Verdict::SoftBounce);
        assert_eq!(verdict(None, "something went wrong"), Verdict::SoftBounce);
    }

    #[test]
    fn the_returned_copy_is_not_read_as_a_reason() {
        let text = "Delivery to the following recipient failed.\n\
                    ----- Original message -----\nSubject: user unknown jokes";
        assert_eq!(
            before_returned_copy(text),
            "Delivery to the following recipient failed.\n"
        );
    }
}
