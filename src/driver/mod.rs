//! Socket side of the Erlang fast path: poller threads doing TLS I/O on
//! adopted file descriptors, with inet's socket semantics.

pub mod conn;
mod datagram;
mod delivery;
mod host;
pub mod http;
pub mod inet;
mod input;
pub mod options;
mod output;
pub mod packet;
pub mod poller;
pub mod socket;
mod state;
mod step;
mod tls;

pub use conn::{Conn, RecvOutcome, SendOutcome};
pub use host::{Failure, Host, Message, Outbox, Reply};
pub use options::{Active, SocketOptions};
pub use packet::Packet;
pub use poller::Poller;
pub use tls::Tls;
