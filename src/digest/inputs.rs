//! What a digest command loads from the site (the shorts, the templates and
//! the DKIM signer) and the [`Sender`] that carries it, with the store and
//! the clock, through every stage. Reads files; writes nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::DigestError;
use super::compose::EncodedCopies;
use crate::config::{Config, DigestConfig};
use crate::delivery::compose::Signer;
use crate::diagnostics::Problems;
use crate::model::Collection;
use crate::render::digest::{DigestTemplates, SharedCopies};
use crate::store::Store;
use crate::tokens::Secret;

/// Everything a send needs besides the transport.
pub struct Sender<'a> {
    pub config: &'a Config,
    pub digest_config: &'a DigestConfig,
    pub templates: &'a DigestTemplates,
    pub store: &'a dyn Store,
    pub secret: &'a Secret,
    pub signer: Option<&'a Signer>,
    pub now: DateTime<Utc>,
    /// Set by SIGTERM/SIGINT: stop handing out new messages, finish and
    /// record the ones in flight, leave the digest unfinished for the next run.
    pub cancel: &'a AtomicBool,
    /// Copies rendered once per audience and personalised per subscriber.
    pub copies: SharedCopies,
    /// Their parts, encoded once per audience.
    pub encoded: EncodedCopies,
}

impl Sender<'_> {
    /// Whether a signal asked the run to stop handing out messages.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// What a digest command loads from the site besides config: the shorts, the
/// templates and the DKIM signer.
pub struct Inputs<'c> {
    pub digest_config: &'c DigestConfig,
    pub collection: Collection,
    pub templates: DigestTemplates,
    pub signer: Option<Signer>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    #[error("{0}")]
    Invalid(Problems),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl<'c> Inputs<'c> {
    /// The inputs, or every problem in the content and templates at once.
    pub fn load(config: &'c Config) -> Result<Inputs<'c>, InputsError> {
        let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
        let signer = config
            .delivery
            .dkim
            .as_ref()
            .map(Signer::load)
            .transpose()
            .map_err(DigestError::from)?;
        let mut problems = Problems::default();
        let collection = crate::content::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        let templates = DigestTemplates::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        match (collection, templates) {
            (Some(collection), Some(templates)) => Ok(Inputs {
                digest_config,
                collection,
                templates,
                signer,
            }),
            _ => Err(InputsError::Invalid(problems.sorted())),
        }
    }

    /// A sender for one run at `now`, with its own cache of shared copies.
    pub fn sender<'a>(
        &'a self,
        config: &'a Config,
        store: &'a dyn Store,
        secret: &'a Secret,
        now: DateTime<Utc>,
        cancel: &'a AtomicBool,
    ) -> Sender<'a> {
        Sender {
            config,
            digest_config: self.digest_config,
            templates: &self.templates,
            store,
            secret,
            signer: self.signer.as_ref(),
            now,
            cancel,
            copies: SharedCopies::default(),
            encoded: EncodedCopies::default(),
        }
    }
}
