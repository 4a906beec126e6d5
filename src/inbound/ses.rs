//! Amazon SES notifications (bounce, complaint, delivery), as SES sends
//! them through SNS: by email (a JSON body) or to an HTTPS endpoint. Only
//! the reading is here: what a notification says, as [`Finding`]s. Whether
//! an SNS message is genuine is checked by `sns` where it arrives over HTTP.

use serde::Deserialize;

use super::classify::{Finding, Verdict, judge_failure};

/// The SNS envelope around an SES notification.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsEnvelope {
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    notification_type: String,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounce_sub_type: String,
    #[serde(default)]
    bounced_recipients: Vec<BouncedRecipient>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BouncedRecipient {
    email_address: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    complaint_feedback_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// The findings of an SES notification in `text` (bare, or inside an SNS
/// envelope); `None` when `text` is not one.
pub fn findings(text: &str) -> Option<Vec<Finding>> {
    let json = &text[text.find('{')?..=text.rfind('}')?];
    let parsed = match serde_json::from_str::<SnsEnvelope>(json) {
        Ok(envelope) => serde_json::from_str(&envelope.message),
        Err(_) => serde_json::from_str(json),
    };
    let notification: Notification = match parsed {
        Ok(notification) => notification,
        Err(_) => return mangled(text),
    };
    Some(match notification.notification_type.as_str() {
        "Bounce" => bounce_findings(notification.bounce?),
        "Complaint" => complaint_findings(notification.complaint?),
        "Delivery" => vec![Finding::of(Verdict::Delivered)],
        other => vec![Finding::unrecognised(&format!(
            "an SES notification of type {other:?}"
        ))],
    })
}

/// A notification whose JSON a mail system broke (long lines cut and
/// folded): its type, recipient and status are still plain to see.
fn mangled(text: &str) -> Option<Vec<Finding>> {
    let text = text.replace("\\\"", "\"");
    let field = |name: &str| {
        text.split(&format!("\"{name}\":\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
    };
    let recipient = field("emailAddress");
    let verdict = match field("notificationType")?.as_str() {
        "Complaint" => Verdict::Complaint,
        "Bounce" if field("bounceType").as_deref() == Some("Permanent") => {
            let diagnostic = field("diagnosticCode").unwrap_or_default();
            judge_failure(field("status").as_deref(), &diagnostic)
        }
        "Bounce" => Verdict::SoftBounce,
        _ => return None,
    };
    Some(vec![Finding {
        verdict,
        recipient,
        status: field("status"),
        diagnostic: "an SES notification whose JSON a mail system cut".into(),
    }])
}

fn bounce_findings(bounce: Bounce) -> Vec<Finding> {
    let permanent = bounce.bounce_type == "Permanent";
    bounce
        .bounced_recipients
        .into_iter()
        .map(|r| {
            let diagnostic = r.diagnostic_code.unwrap_or_default();
            let diagnostic = diagnostic
                .split_once(';')
                .map_or(diagnostic.as_str(), |(_, rest)| rest)
                .trim()
                .to_string();
            // SES's own suppression list is its memory, not the receiver's answer.
            let verdict = if permanent && bounce.bounce_sub_type != "Suppressed" {
                judge_failure(r.status.as_deref(), &diagnostic)
            } else {
                Verdict::SoftBounce
            };
            Finding {
                verdict,
                recipient: Some(r.email_address),
                status: r.status,
                diagnostic,
            }
        })
        .collect()
}

fn complaint_findings(complaint: Complaint) -> Vec<Finding> {
    let kind = complaint
        .complaint_feedback_type
        .unwrap_or_else(|| "abuse".into());
    let mut findings: Vec<Finding> = complaint
        .complained_recipients
        .into_iter()
        .map(|r| Finding {
            verdict: Verdict::Complaint,
            recipient: Some(r.email_address),
            status: None,
            diagnostic: format!("feedback type {kind}"),
        })
        .collect();
    if findings.is_empty() {
        findings.push(Finding::of(Verdict::Complaint));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bounces_and_complaints_bare_or_in_an_sns_envelope() {
        let bounce = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
            "bouncedRecipients":[{"emailAddress":"gone@example.net","action":"failed","status":"5.1.1",
            "diagnosticCode":"smtp; 550 5.1.1 user unknown"}]}}"#;
        let found = findings(bounce).unwrap();
        assert_eq!(found[0].verdict, Verdict::HardBounce);
        assert_eq!(found[0].recipient.as_deref(), Some("gone@example.net"));
        assert_eq!(found[0].diagnostic, "550 5.1.1 user unknown");
        let envelope = serde_json::json!({
            "Type": "Notification",
            "Message": r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"a@example.net"}],"complaintFeedbackType":"abuse"}}"#,
        })
        .to_string();
        let found = findings(&envelope).unwrap();
        assert_eq!(found[0].verdict, Verdict::Complaint);
        let transient = bounce.replace("Permanent", "Transient");
        assert_eq!(
            findings(&transient).unwrap()[0].verdict,
            Verdict::SoftBounce
        );
        assert!(findings("not json at all").is_none());
        assert!(findings("{\"json\": \"but not SES\"}").is_none());
    }
}
