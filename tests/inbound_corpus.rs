//! The bounce classifier against Sisimai, the reference bounce analyser:
//! every message of its corpus (tests/fixtures/sisimai, BSD 2-Clause) is
//! classified and compared with the verdict Sisimai's own test tables give
//! (tests/fixtures/sisimai/verdicts.tsv).
//!
//! A wrong action is one that harms a reader or the list: a hard bounce
//! where Sisimai says soft or not a bounce (the subscriber would be dropped),
//! a complaint missed, or a complaint or unsubscribe that is not one. There
//! must be none. A miss (a hard bounce counted as soft, a bounce left
//! unrecognised) costs only time, and the right action must be taken for at
//! least 95 % of the verdicts. Run with `--nocapture` for the table.

use std::collections::BTreeMap;
use std::path::Path;

use shorts::inbound::{Finding, Report, Verdict, classify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Hard,
    Soft,
    Complaint,
    Ignore,
    Unsubscribe,
}

struct Expected {
    file: String,
    reason: String,
    status: String,
    action: Action,
}

fn expected_action(reason: &str, hardbounce: &str) -> Action {
    match (reason, hardbounce) {
        (_, "1") => Action::Hard,
        ("feedback", _) => Action::Complaint,
        ("vacation" | "delivered" | "not-a-bounce", _) => Action::Ignore,
        _ => Action::Soft,
    }
}

fn our_action(finding: &Finding) -> Action {
    match finding.verdict {
        Verdict::HardBounce => Action::Hard,
        Verdict::SoftBounce => Action::Soft,
        Verdict::Complaint => Action::Complaint,
        Verdict::Unsubscribe => Action::Unsubscribe,
        Verdict::AutoReply | Verdict::Delivered | Verdict::Unrecognised(_) => Action::Ignore,
    }
}

fn is_wrong(expected: Action, ours: Action) -> bool {
    (ours == Action::Hard && expected != Action::Hard)
        || (expected == Action::Complaint) != stops_mail(ours)
}

/// Sisimai calls a `List-Unsubscribe` mailto request "feedback" too; both
/// end the subscription (a complaint also suppresses the address).
fn stops_mail(action: Action) -> bool {
    matches!(action, Action::Complaint | Action::Unsubscribe)
}

fn is_right(expected: Action, ours: Action) -> bool {
    expected == ours || (expected == Action::Complaint && stops_mail(ours))
}

fn verdicts(root: &Path) -> BTreeMap<String, Vec<Expected>> {
    let table = std::fs::read_to_string(root.join("verdicts.tsv")).expect("read verdicts.tsv");
    let mut by_file: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 6, "verdicts.tsv: short line {line:?}");
        by_file
            .entry(cols[0].to_string())
            .or_default()
            .push(Expected {
                file: cols[0].to_string(),
                status: cols[2].to_string(),
                reason: cols[4].to_string(),
                action: expected_action(cols[4], cols[5]),
            });
    }
    by_file
}

/// `bsd/lhost-postfix-01.eml` → `lhost-postfix`.
fn origin(file: &str) -> String {
    let name = file.rsplit('/').next().unwrap_or(file);
    let stem = name.trim_end_matches(".eml");
    match stem.rsplit_once('-') {
        Some((origin, n)) if n.chars().all(|c| c.is_ascii_digit()) => origin.to_string(),
        _ => stem.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    right: usize,
    miss: usize,
    wrong: usize,
}

#[test]
fn sisimai_corpus_is_classified_without_a_wrong_action() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sisimai");
    let by_file = verdicts(&root);
    assert!(by_file.len() >= 629, "the whole corpus is listed");
    let mut per_origin: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut wrongs = Vec::new();
    for (file, expected) in &by_file {
        let raw = std::fs::read(root.join(file)).expect("read a corpus file");
        let findings = match Report::read(&raw) {
            Ok(report) => classify(&report),
            Err(e) => vec![Finding::unrecognised(&e.to_string())],
        };
        for (i, want) in expected.iter().enumerate() {
            // Pairwise when the counts agree; else the first finding speaks for all.
            let finding = if findings.len() == expected.len() {
                &findings[i]
            } else {
                &findings[0]
            };
            let ours = our_action(finding);
            let tally = per_origin.entry(origin(file)).or_default();
            let line = format!(
                "{} #{}: Sisimai {} {} ({:?}), ours {:?} {:?} — {}",
                want.file,
                i + 1,
                want.reason,
                want.status,
                want.action,
                ours,
                finding.status,
                finding.diagnostic.chars().take(100).collect::<String>()
            );
            if is_right(want.action, ours) {
                tally.right += 1;
            } else if is_wrong(want.action, ours) {
                tally.wrong += 1;
                wrongs.push(line);
            } else {
                tally.miss += 1;
                misses.push(line);
            }
        }
    }
    let total: Tally = per_origin.values().fold(Tally::default(), |t, o| Tally {
        right: t.right + o.right,
        miss: t.miss + o.miss,
        wrong: t.wrong + o.wrong,
    });
    println!("| origin | right | miss | wrong |\n|---|---|---|---|");
    for (origin, t) in &per_origin {
        println!("| {origin} | {} | {} | {} |", t.right, t.miss, t.wrong);
    }
    let all = total.right + total.miss + total.wrong;
    println!(
        "| **all** | {} ({:.1} %) | {} | {} |",
        total.right,
        100.0 * total.right as f64 / all as f64,
        total.miss,
        total.wrong
    );
    println!("\nMisses:\n{}", misses.join("\n"));
    println!("\nWrong:\n{}", wrongs.join("\n"));
    assert!(wrongs.is_empty(), "wrong actions:\n{}", wrongs.join("\n"));
    assert!(
        total.right * 100 >= all * 95,
        "{} of {all} right, under 95 %",
        total.right
    );
}
