//! Pure business rules and validated value types. No I/O lives here: every type is parsed
//! once at the edge (HTTP, queue, webhook) and trusted afterwards.

pub mod access;
pub mod ai;
pub mod api_key;
pub mod callback_token;
pub mod calls;
pub mod campaign;
pub mod crm;
pub mod csv_cell;
pub mod email;
pub mod enrichment;
pub mod ids;
pub mod import;
pub mod inbox;
pub mod lead_state;
pub mod message;
pub mod page;
pub mod phone;
pub mod property;
pub mod quiet_hours;
pub mod rate;
pub mod reply;
pub mod score;
pub mod segments;
pub mod sendgrid_signature;
pub mod sequence;
pub mod settings;
pub mod suppression;
pub mod team;
pub mod template;
pub mod text;
mod text_enum;
pub mod unsubscribe;
pub mod validation;
pub mod webhook_out;
pub mod webhook_signature;
pub mod workflow;

pub use validation::FieldError;
