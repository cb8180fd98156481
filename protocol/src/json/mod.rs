//! JSON over the protocol (feature `json`): the one table of client methods — their names,
//! params → request, answer → result — and the JSON of results and events, shared by the C
//! SDK's `feige_call` and the server's WebSocket gateway.

pub mod direct;
pub mod method;
pub mod params;
pub mod peek;
pub mod render;
mod render_files;
mod table;
mod table_codes;
mod table_files;
mod table_groups;
mod table_social;
mod table_twofactor;

pub use method::{Method, Prepared, Serve};
pub use params::{ParamError, Params};
pub use table::{event, find, methods, send_message_request};
pub use table_codes::email_or_phone;
pub use table_groups::red_packet_request;
pub use table_twofactor::login_totp_request;
