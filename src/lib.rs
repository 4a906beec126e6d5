//! `shorts` turns a folder of single-idea Markdown notes into feeds, pages and a weekly digest.
//!
//! The modules follow the pipeline, content → model → render → deliver → ledger:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | input | [`config`] | `config.toml`: parse, defaults, validation |
//! | input | [`content`] | reading `content/shorts/*.md` into validated [`model::Short`]s |
//! | input | [`subscribers`] | subscriber fields typed on the command line or read from CSV |
//! | model | [`model`] | the domain types the rest of the code trusts, and a digest's sections |
//! | model | [`paths`] | every output path and link below the site root |
//! | render | [`render`] | pure functions from the model to output bytes: feeds, pages, the digest email |
//! | output | [`output`] | writing rendered files into `public/`, all or nothing |
//! | digest | [`digest`] | which digest is due, what it carries, and sending it with the ledger exact |
//! | digest | [`schedule`] | the slots of `[digest] schedule` in the site's time zone, and when the next scheduled short goes live |
//! | deliver | [`delivery`] | composing messages and handing them to the outbox or SMTP |
//! | deliver | [`websub`] | telling WebSub hubs which feeds a build changed |
//! | ledger | [`store`] | subscribers and what went to whom, behind the `Store` traits; SQLite |
//! | back | [`inbound`] | mail that comes back: bounces, complaints, `mailto:` unsubscribes |
//! | glue | [`site`] | the build pipeline, one step per stage |
//! | glue | [`publish`] | what cron runs: build, then send what is due |
//! | glue | [`daemon`] | `shorts schedule`: publish on the schedule and as shorts come due, rebuild on changes |
//! | glue | [`server`] | `shorts serve`: the output over HTTP and the subscription endpoints |
//!
//! Beside the pipeline: [`diagnostics`] carries the `path:line: message`
//! problems every stage reports, [`clock`] is the only place that reads the
//! time, [`lock`] keeps runs from overlapping, [`tokens`] signs the links
//! in emails, [`private`] creates the data folder's files for our eyes only,
//! [`http_client`] makes the HTTP requests `shorts` sends on its own behalf,
//! and [`bytes`] is the binary form of the build's own caches.

pub mod bytes;
pub mod clock;
pub mod config;
pub mod content;
pub mod daemon;
pub mod delivery;
pub mod diagnostics;
pub mod digest;
pub mod http_client;
pub mod inbound;
pub mod lock;
pub mod model;
pub mod output;
pub mod paths;
pub mod private;
pub mod publish;
pub mod published;
pub mod render;
pub mod scaffold;
pub mod schedule;
pub mod server;
pub mod site;
pub mod store;
pub mod subscribers;
pub mod tokens;
pub mod websub;
