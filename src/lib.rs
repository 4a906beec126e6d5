//! `shorts` turns a folder of single-idea Markdown notes into feeds, pages and a weekly digest.
//!
//! The modules follow the pipeline, one stage each:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | input | [`config`] | `config.toml`: parse, defaults, validation |
//! | input | [`content`] | reading `content/shorts/*.md` into validated [`model::Short`]s |
//! | model | [`model`] | the domain types the rest of the code trusts |
//! | render | [`render`] | pure functions from the model to output bytes (feeds, …) |
//! | output | [`output`] | writing rendered files into `public/`, all or nothing |
//! | glue | [`site`] | the build pipeline, one step per stage |
//!
//! [`diagnostics`] carries the `path:line: message` problems every stage reports,
//! and [`clock`] is the only place that reads the time.

pub mod clock;
pub mod config;
pub mod content;
pub mod daemon;
pub mod delivery;
pub mod diagnostics;
pub mod digest;
pub mod lock;
pub mod model;
pub mod output;
pub mod publish;
pub mod render;
pub mod schedule;
pub mod server;
pub mod site;
pub mod store;
pub mod subscribers;
pub mod tokens;
