//! Postgres: the pool, the migration runner, tenant-scoped transactions and one repository
//! module per aggregate. Every tenant-owned query runs inside a transaction opened by
//! [`scope::begin`], which sets the team (and user) for row-level security.

#[macro_use]
mod sql;

pub mod ai;
pub mod api_keys;
pub mod businesses;
pub mod calls;
pub mod campaign_changes;
pub mod campaigns;
pub mod consent;
pub mod contacts;
pub mod db;
pub mod delivery;
pub mod endpoints;
pub mod enrichment;
pub mod error;
pub mod exports;
pub mod feed;
pub mod imports;
pub mod inbox;
pub mod integrations;
pub mod invitations;
pub mod mail;
pub mod members;
pub mod messages;
pub mod migrate;
pub mod number_orders;
pub mod numbers;
pub mod nurtures;
pub mod openers;
pub mod outbox;
pub mod parents;
pub mod properties;
pub mod scope;
pub mod scoring;
pub mod settings;
pub mod skip_trace;
pub mod suppressions;
pub mod teams;
pub mod tls;
pub mod users;
pub mod webhooks;
pub mod workers;
pub mod workflows;

pub use db::Db;
pub use error::StoreError;
pub use scope::Scope;
pub use tokio_postgres;

/// The transaction type repositories take.
pub type Tx<'a> = tokio_postgres::Transaction<'a>;
