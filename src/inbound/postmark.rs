//! Postmark's webhooks (Bounce, SpamComplaint, SubscriptionChange), read
//! into the same [`Finding`]s a returned message gives. Only the reading is
//! here: whether the request really came from Postmark (its Basic auth) is
//! checked where it arrives over HTTP, and acting on a finding is `act`'s.
//!
//! Postmark's own bounce type is a hint, not the verdict: a `HardBounce`
//! ends a subscription only when the receiver's words (`Details`) do not
//! say the failure is about something else, judged as every other bounce is.

use serde::Deserialize;
use serde_json::Value;

use super::classify::{Finding, Verdict, judge_failure};

/// One webhook request: the finding, and the id that makes a retry of it
/// change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub finding: Finding,
}

/// What Postmark posts; every field but `RecordType` depends on it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: String,
    #[serde(rename = "ID", default)]
    id: Option<Value>,
    #[serde(rename = "Type", default)]
    bounce_type: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    changed_at: Option<String>,
    #[serde(default)]
    suppress_sending: Option<bool>,
    #[serde(default)]
    suppression_reason: Option<String>,
}

/// The event in a webhook body; `Ok(None)` for record types shorts does not
/// read (Delivery, Open, Click, …), an error naming what is wrong when the
/// body is not a Postmark record.
pub fn read(body: &[u8]) -> Result<Option<Event>, String> {
    let record: Record = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a Postmark webhook record: {e}"))?;
    match record.record_type.as_str() {
        "Bounce" | "SpamComplaint" => bounce(&record).map(Some),
        "SubscriptionChange" => subscription_change(&record).map(Some),
        _ => Ok(None),
    }
}

/// A Bounce or SpamComplaint record: `ID` is Postmark's bounce id.
fn bounce(record: &Record) -> Result<Event, String> {
    let id = match &record.id {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(format!("a {} record without its `ID`", record.record_type)),
    };
    let email = required(&record.email, "Email", &record.record_type)?;
    let details = record.details.clone().unwrap_or_default();
    let kind = match record.record_type.as_str() {
        "SpamComplaint" => "SpamComplaint",
        _ => record.bounce_type.as_deref().unwrap_or("Unknown"),
    };
    let verdict = bounce_verdict(kind, &details);
    Ok(Event {
        id: format!("postmark:{}:{id}", record.record_type),
        finding: Finding {
            verdict,
            recipient: Some(email),
            status: None,
            diagnostic: format!("Postmark {kind}: {details}").trim_end().to_string(),
        },
    })
}

/// What a Postmark bounce `Type` means here (Postmark's list of types:
/// <https://postmarkapp.com/developer/api/bounce-api#bounce-types>).
fn bounce_verdict(kind: &str, details: &str) -> Verdict {
    match kind {
        // "Unknown user, mailbox not found" / "not a valid email address":
        // hard unless the receiver's words say otherwise.
        "HardBounce" => judge_failure(Some("5.1.1"), details),
        "BadEmailAddress" => judge_failure(Some("5.1.3"), details),
        "SpamComplaint" => Verdict::Complaint,
        "Unsubscribe" => Verdict::Unsubscribe,
        "AutoResponder" => Verdict::AutoReply,
        "SoftBounce"
        | "Transient"
        | "DnsError"
        | "SpamNotification"
        | "Blocked"
        | "DMARCPolicy"
        | "ChallengeVerification"
        | "VirusNotification"
        | "Unknown" => Verdict::SoftBounce,
        other => Verdict::Unrecognised(format!(
            "a Postmark bounce of type {other:?}, which says nothing about the address"
        )),
    }
}

/// A change to the stream's suppression list. It has no id of its own:
/// the recipient and the time of the change name it.
fn subscription_change(record: &Record) -> Result<Event, String> {
    let recipient = required(&record.recipient, "Recipient", "SubscriptionChange")?;
    let changed_at = required(&record.changed_at, "ChangedAt", "SubscriptionChange")?;
    let reason = record.suppression_reason.as_deref().unwrap_or("");
    let verdict = match (record.suppress_sending, reason) {
        (Some(true), "HardBounce") => judge_failure(Some("5.1.1"), ""),
        (Some(true), "SpamComplaint") => Verdict::Complaint,
        // A recipient's unsubscribe, or the sender's own suppression.
        (Some(true), _) => Verdict::Unsubscribe,
        (Some(false), _) => Verdict::Unrecognised(
            "Postmark reactivated the address; shorts resubscribes nobody by itself".into(),
        ),
        (None, _) => return Err("a SubscriptionChange record without `SuppressSending`".into()),
    };
    Ok(Event {
        id: format!("postmark:SubscriptionChange:{recipient}:{changed_at}"),
        finding: Finding {
            verdict,
            recipient: Some(recipient),
            status: None,
            diagnostic: format!("Postmark suppression: {reason}")
                .trim_end_matches([' ', ':'])
                .to_string(),
        },
    })
}

fn required(value: &Option<String>, field: &str, record_type: &str) -> Result<String, String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("a {record_type} record without its `{field}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        read(json.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn a_hard_bounce_is_hard_unless_the_receiver_says_otherwise() {
        let bounce = r#"{"RecordType":"Bounce","ID":7,"Type":"HardBounce","Email":"a@example.net","Details":"DETAILS"}"#;
        let hard = event(&bounce.replace("DETAILS", "smtp;550 5.1.1 user unknown"));
        assert_eq!(hard.finding.verdict, Verdict::HardBounce);
        assert_eq!(hard.id, "postmark:Bounce:7");
        assert_eq!(hard.finding.recipient.as_deref(), Some("a@example.net"));
        let full = event(&bounce.replace("DETAILS", "smtp;552 5.2.2 mailbox full"));
        assert_eq!(full.finding.verdict, Verdict::SoftBounce);
        let blocked = event(&bounce.replace("DETAILS", "smtp;550 5.7.1 message blocked as spam"));
        assert_eq!(blocked.finding.verdict, Verdict::SoftBounce);
        let soft = event(&bounce.replace("HardBounce", "SoftBounce"));
        assert_eq!(soft.finding.verdict, Verdict::SoftBounce);
        let odd = event(&bounce.replace("HardBounce", "TemplateRenderingFailed"));
        assert!(matches!(odd.finding.verdict, Verdict::Unrecognised(_)));
    }

    #[test]
    fn complaints_and_suppressions() {
        let complaint = event(
            r#"{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","Email":"a@example.net"}"#,
        );
        assert_eq!(complaint.finding.verdict, Verdict::Complaint);
        assert_eq!(complaint.id, "postmark:SpamComplaint:42");
        let change = r#"{"RecordType":"SubscriptionChange","Recipient":"a@example.net","ChangedAt":"2020-02-01T10:53:34Z","SuppressSending":true,"SuppressionReason":"REASON"}"#;
        let unsubscribed = event(&change.replace("REASON", "ManualSuppression"));
        assert_eq!(unsubscribed.finding.verdict, Verdict::Unsubscribe);
        assert_eq!(
            unsubscribed.id,
            "postmark:SubscriptionChange:a@example.net:2020-02-01T10:53:34Z"
        );
        let complained = event(&change.replace("REASON", "SpamComplaint"));
        assert_eq!(complained.finding.verdict, Verdict::Complaint);
        let reactivated = event(&change.replace("true", "false"));
        assert!(matches!(
            reactivated.finding.verdict,
            Verdict::Unrecognised(_)
        ));
    }

    #[test]
    fn other_records_are_ignored_and_broken_ones_refused() {
        assert_eq!(
            read(br#"{"RecordType":"Open","Recipient":"a@example.net"}"#),
            Ok(None)
        );
        assert!(read(b"not json").is_err());
        assert!(
            read(br#"{"RecordType":"Bounce","Type":"HardBounce","Email":"a@example.net"}"#)
                .is_err()
        );
        assert!(read(br#"{"RecordType":"Bounce","ID":1,"Type":"HardBounce"}"#).is_err());
    }
}
