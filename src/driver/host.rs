//! What the driver needs from its front end (the NIF layer): who gets
//! messages and answers, and how they are sent.

use super::options::SocketOptions;
use super::packet::FrameError;
use crate::engine::Error;

/// The front end's types for who is told what.
pub trait Host: Sized + Send + Sync + 'static {
    /// The controlling process (and whatever is needed to name the socket).
    type Owner: Send;
    /// A caller blocked in handshake, recv or send.
    type Waiter: Send;
    /// Memory the front end hands to the application as it is (an Erlang
    /// binary): large packets are decrypted straight into one.
    type Buffer: Send + AsMut<[u8]>;

    /// A buffer of `len` bytes (contents unspecified), or None if the
    /// front end has none (the packet then goes through `plain`).
    fn buffer(len: usize) -> Option<Self::Buffer>;

    /// Runs `f` with the outbox of the current poller thread.
    fn with_poller_outbox<R>(f: impl FnOnce(&mut dyn Outbox<Self>) -> R) -> R;

    /// Runs a handshake step for `waiter`, so that application callbacks
    /// made during it know whom to ask.
    fn during_handshake<R>(_waiter: Option<&Self::Waiter>, step: impl FnOnce() -> R) -> R {
        step()
    }
}

/// Messages for the controlling process in active mode.
#[derive(Debug)]
pub enum Message<'a> {
    Data(&'a [u8]),
    /// `{active, N}` ran out.
    Passive,
    Closed,
    Error(&'a Failure),
    /// A TLS 1.3 ticket (a client with manual tickets).
    SessionTicket(&'a crate::engine::session::Ticket),
    /// A client that sent early data: whether the server accepted it.
    EarlyData(bool),
}

/// Answers to a blocked caller.
#[derive(Debug)]
pub enum Reply<'a> {
    Handshake(Result<(), Failure>),
    Recv(Result<&'a [u8], Failure>),
    Send(Result<(), Failure>),
}

/// Why an operation failed, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Closed,
    Tls(Error),
    /// A socket error by its POSIX name.
    Posix(&'static str),
    /// A packet over `packet_size` (or malformed): all unread bytes.
    InvalidPacket(Vec<u8>),
    /// A packet to send too big for its length header: (size, largest).
    PacketTooLarge(usize, usize),
}

impl From<FrameError> for Failure {
    fn from(e: FrameError) -> Failure {
        match e {
            FrameError::TooBig | FrameError::Invalid => Failure::InvalidPacket(Vec::new()),
        }
    }
}

/// Where a connection's events go. The driver calls it with the connection
/// locked, so events of one connection are delivered in order.
pub trait Outbox<H: Host> {
    fn to_owner(&mut self, owner: &H::Owner, options: &SocketOptions, message: Message<'_>);
    /// A whole packet decrypted into a buffer of its own (large packets in
    /// active binary mode), as `Message::Data`.
    fn packet_to_owner(&mut self, owner: &H::Owner, options: &SocketOptions, packet: H::Buffer);
    fn reply(&mut self, waiter: H::Waiter, options: &SocketOptions, reply: Reply<'_>);
}
