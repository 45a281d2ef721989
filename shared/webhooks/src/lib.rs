//! The providers' doors into the platform (function URLs, no login): each verifies what
//! arrives (a signature, or a job's own token), hands it to the inbound use cases and answers
//! in HTTP. Nothing here decides what a delivery means; `nextier-inbound` does, and returns its
//! own errors, which only these doors turn into status codes.
//!
//! - [`signalhouse`]: texts, receipts and number purchases (HMAC-signed).
//! - [`sendgrid`]: email events (ECDSA-signed) and the unsubscribe link.
//! - [`twilio`]: voice calls, voicemail and call progress (`X-Twilio-Signature`), in TwiML.
//! - [`skip_trace`]: a skip-trace job's completion (its callback URL's token).

pub mod sendgrid;
pub mod signalhouse;
pub mod skip_trace;
pub mod twilio;
