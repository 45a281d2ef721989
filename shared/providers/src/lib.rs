//! Clients for the outside providers, each a [`nextier_outbound::Transport`]: they can only
//! be handed messages the outbound gate cleared. Each is tested against a local fake server
//! that speaks the provider's documented contract (DOMAIN.md B).

pub mod signalhouse;
