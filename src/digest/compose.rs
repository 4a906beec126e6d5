//! One subscriber's copy of a digest: their signed links, the rendered
//! digest (shared between alike subscribers) and the composed message.
//! Touches neither the store nor the transport, so every compose thread can
//! share one [`Composer`].

use chrono::{DateTime, Utc};

use super::{DigestError, Sender};
use crate::config::{Config, DigestConfig};
use crate::delivery::compose::{self, Composed, Envelope, Signer};
use crate::delivery::verp;
use crate::model::Subscriber;
use crate::paths;
use crate::render::digest::{DigestContent, DigestTemplates, Links, RenderedDigest, SharedCopies};
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
        let (links, token) = self.links(&subscriber);
        let Some(rendered) = self.templates.render_shared(
            self.copies,
            self.config,
            self.digest_config,
            content,
            &subscriber,
            &links,
        )?
        else {
            return Ok(Prepared {
                subscriber,
                message: None,
            });
        };
        let envelope = Envelope {
            config: self.digest_config,
            digest: content.number,
            subscriber: &subscriber,
            unsubscribe_url: &links.unsubscribe,
            unsubscribe_token: &token,
            date: self.now,
            returns: verp::returns(
                self.config.delivery.bounce_address.as_ref(),
                self.secret,
                verp::Sent::Digest {
                    digest: content.number,
                    subscriber: subscriber.id,
                },
            ),
        };
        let composed = compose::compose(&envelope, &rendered, self.signer)?;
        Ok(Prepared {
            subscriber,
            message: Some((rendered, composed)),
        })
    }
}
