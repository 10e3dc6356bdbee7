//! Live streams: named channels and who may read or write them, and chat
//! over SSE (its request forms and frames).

pub mod channels;
pub mod chat;
