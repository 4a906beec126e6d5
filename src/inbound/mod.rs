//! Mail that comes back: bounces (RFC 3464 delivery status notifications and
//! the text bounces older servers write), abuse reports from feedback loops
//! (RFC 5965), `mailto:` unsubscribe requests and auto-replies.
//!
//! [`report`] reads a raw message, [`classify`] says what it is, and [`act`]
//! matches it to a delivery by a signed token and records what happened;
//! [`mailbox`] reads Maildir folders and keeps what was not acted on.
//! [`ses`], [`sns`] and [`postmark`] read what relays report by webhook
//! (`serve` receives them), acted on through `act::handle_reported` once
//! the request is authenticated. Nothing here sends mail or makes a
//! request, and nothing acts on a message it cannot match to a signed
//! token or an authenticated relay.

pub mod act;
pub mod classify;
pub mod mailbox;
pub mod postmark;
pub mod report;
pub mod ses;
pub mod sns;

pub use act::{Context, Effect, Handled, handle, handle_reported};
pub use classify::{Finding, Verdict, classify};
pub use mailbox::{MailboxError, keep, process_maildir};
pub use report::{Report, ReportError};
