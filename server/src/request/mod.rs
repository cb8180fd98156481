//! Request handlers, one module per area; [`crate::handler`] dispatches to them.

pub(crate) mod account;
pub(crate) mod message;
pub(crate) mod profile;
pub(crate) mod social;
