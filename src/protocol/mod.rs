//! RESP: request parsing, the reply type and its RESP2/RESP3 encodings, number formats.

pub mod ldouble;
pub mod numbers;
pub mod reply;
pub mod request;

pub use reply::Reply;
