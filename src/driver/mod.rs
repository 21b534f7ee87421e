//! Socket side of the Erlang fast path: poller threads doing TLS I/O on
//! adopted file descriptors, with inet's socket semantics.

pub mod conn;
pub mod http;
pub mod inet;
pub mod options;
pub mod packet;
pub mod poller;
pub mod socket;

pub use conn::{Conn, Failure, Host, Message, Outbox, RecvOutcome, Reply, SendOutcome};
pub use options::{Active, SocketOptions};
pub use packet::Packet;
