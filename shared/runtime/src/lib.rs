//! What every function shares at run time: JSON logs through `tracing` with a correlation
//! id, CloudWatch EMF metrics, the SQS partial-batch helper, and small config helpers.

pub mod config;
pub mod correlation;
pub mod deadline;
pub mod metrics;
pub mod serve;
pub mod sqs;
pub mod telemetry;

pub use correlation::CorrelationId;
