//! One subscriber's copy of a digest: their signed links, the rendered
//! digest and its encoded parts (both shared between alike subscribers)
//! and the composed message.
//! Touches neither the store nor the transport, so every compose thread can
//! share one [`Composer`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{DigestError, Sender};
use crate::config::{Config, DigestConfig};
use crate::delivery::body::SharedBody;
use crate::delivery::compose::{self, Composed, DigestParts, Envelope, Signer};
use crate::delivery::verp;
use crate::model::Subscriber;
use crate::paths;
use crate::render::digest::{
    DigestContent, DigestTemplates, Links, Personalised, RenderedDigest, SharedCopies, SharedCopy,
    is_personal,
};
use crate::tokens::{Purpose, Secret};

/// What one subscriber's copy would be: rendered, or nothing new for them.
pub struct Prepared {
    pub subscriber: Subscriber,
    pub message: Option<(RenderedDigest, Composed)>,
}

impl Sender<'_> {
    /// What builds the messages, without the store: shareable between threads.
    pub fn composer(&self) -> Composer<'_> {
        Composer {
            config: self.config,
            digest_config: self.digest_config,
            templates: self.templates,
            secret: self.secret,
            signer: self.signer,
            now: self.now,
            copies: &self.copies,
            encoded: &self.encoded,
        }
    }

    /// Renders and composes one subscriber's copy.
    pub fn prepare(
        &self,
        content: &DigestContent<'_>,
        subscriber: Subscriber,
    ) -> Result<Prepared, DigestError> {
        self.composer().prepare(content, subscriber)
    }
}

/// The parts of a [`Sender`] that render and compose, used by every sending thread.
pub struct Composer<'a> {
    config: &'a Config,
    digest_config: &'a DigestConfig,
    templates: &'a DigestTemplates,
    secret: &'a Secret,
    signer: Option<&'a Signer>,
    now: DateTime<Utc>,
    copies: &'a SharedCopies,
    encoded: &'a EncodedCopies,
}

impl Composer<'_> {
    /// The subscriber's signed links, and the unsubscribe token for the
    /// `List-Unsubscribe` mailto.
    fn links(&self, subscriber: &Subscriber) -> (Links, String) {
        let site = &self.config.site;
        let unsubscribe = self
            .secret
            .sign(Purpose::Unsubscribe, &subscriber.token_id, None);
        let preferences = self
            .secret
            .sign(Purpose::Preferences, &subscriber.token_id, None);
        (
            Links {
                unsubscribe: site.url(&paths::unsubscribe(&unsubscribe)),
                preferences: site.url(&paths::preferences(&preferences)),
                archive: site.url(paths::DIGESTS),
            },
            unsubscribe,
        )
    }

    /// Renders and composes one subscriber's copy.
    pub fn prepare(
        &self,
        content: &DigestContent<'_>,
        subscriber: Subscriber,
    ) -> Result<Prepared, DigestError> {
        let message = self
            .message(content, &subscriber)?
            .map(|(copy, composed)| (copy.into_rendered(), composed));
        Ok(Prepared {
            subscriber,
            message,
        })
    }

    /// Only the message of one subscriber's copy, for sending: the copy is
    /// never filled in whole.
    pub fn compose(
        &self,
        content: &DigestContent<'_>,
        subscriber: &Subscriber,
    ) -> Result<Option<Composed>, DigestError> {
        Ok(self
            .message(content, subscriber)?
            .map(|(_, composed)| composed))
    }

    /// The subscriber's copy and the message carrying it, or `None` when
    /// nothing in the digest is for them.
    fn message(
        &self,
        content: &DigestContent<'_>,
        subscriber: &Subscriber,
    ) -> Result<Option<(Personalised, Composed)>, DigestError> {
        let (links, token) = self.links(subscriber);
        let Some(copy) = self.templates.render_shared(
            self.copies,
            self.config,
            self.digest_config,
            content,
            subscriber,
            &links,
        )?
        else {
            return Ok(None);
        };
        let envelope = Envelope {
            config: self.digest_config,
            digest: content.id,
            subscriber,
            unsubscribe_url: &links.unsubscribe,
            unsubscribe_token: &token,
            date: self.now,
            returns: verp::returns(
                self.config.delivery.bounce_address.as_ref(),
                self.secret,
                verp::Sent::Digest {
                    digest: content.id,
                    subscriber: subscriber.id,
                },
            ),
        };
        let composed = compose::compose(&envelope, self.parts(&copy), self.signer)?;
        Ok(Some((copy, composed)))
    }

    /// The copy's parts, encoded: an audience's copy once for all its
    /// subscribers but for their own lines.
    fn parts(&self, copy: &Personalised) -> DigestParts {
        match copy {
            Personalised::Own(rendered) => DigestParts::of(rendered),
            Personalised::Shared(copy) => {
                let encoded = self.encoded.of(copy);
                let fill = |text: &str| copy.fill(text);
                DigestParts {
                    subject: copy.fill(&copy.template.subject),
                    text: encoded.text.body(fill),
                    html: encoded.html.body(fill),
                }
            }
        }
    }
}

/// Each audience's parts, encoded once (see [`SharedBody`]); one per send.
#[derive(Default)]
pub struct EncodedCopies {
    copies: Mutex<HashMap<usize, Arc<EncodedCopy>>>,
}

struct EncodedCopy {
    text: SharedBody,
    html: SharedBody,
}

impl EncodedCopies {
    /// The encoded parts of `copy`'s audience, encoded now if it is the first.
    fn of(&self, copy: &SharedCopy) -> Arc<EncodedCopy> {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        let encoded = copies.entry(copy.audience).or_insert_with(|| {
            let encode = |text: &str| SharedBody::new(text, is_personal, |t| copy.fill(t));
            Arc::new(EncodedCopy {
                text: encode(&copy.template.text),
                html: encode(&copy.template.html),
            })
        });
        Arc::clone(encoded)
    }
}
