//! The local runtime: the whole backend in one process on this machine, with the same
//! routers, consumer handlers and cron handlers the Lambdas run. Later capabilities add
//! themselves in [`registry`], not by changing how the runtime works.

pub mod aws;
pub mod carrier;
pub mod database;
pub mod registry;
pub mod runner;

pub use runner::{start, LocalConfig, Running};
