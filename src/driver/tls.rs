//! A connection's TLS state, made on its poller thread.
//!
//! Making OpenSSL's objects for a connection (`SSL_new`, its `BIO`) takes
//! OpenSSL 3.0's global ex_data write lock, whose waiters spin while a
//! preempted holder is off the CPU: schedulers spun there for 7 ms. So a
//! socket is adopted with a plan, and its poller makes the connection when
//! the handshake starts (docs/design.md, "OpenSSL objects are made and
//! freed on the poller"). The few calls that may come before that work on
//! the plan; anything else that needs the connection makes it first.

use crate::engine::{Connection, Error};
use std::ops::{Deref, DerefMut};

/// How to make the connection: `Connection::new` and the front end's
/// settings for it (session, tickets, early data, ciphertext read already).
pub type Plan = Box<dyn FnOnce() -> Result<Connection, Error> + Send>;

pub enum Tls {
    /// Not made yet (`plan` is None once making it failed).
    Planned {
        plan: Option<Plan>,
        datagram: bool,
    },
    Made(Connection),
}

impl From<Connection> for Tls {
    fn from(tls: Connection) -> Tls {
        Tls::Made(tls)
    }
}

impl Tls {
    pub fn planned(plan: Plan, datagram: bool) -> Tls {
        Tls::Planned {
            plan: Some(plan),
            datagram,
        }
    }

    /// The connection, made now if it is not yet.
    pub fn make(&mut self) -> Result<&mut Connection, Error> {
        if let Tls::Planned { plan, .. } = self {
            let plan = plan
                .take()
                .ok_or_else(|| Error::Internal("the connection could not be made".into()))?;
            *self = Tls::Made(plan()?);
        }
        match self {
            Tls::Made(tls) => Ok(tls),
            Tls::Planned { .. } => unreachable!("made above"),
        }
    }

    // What may be asked before the connection is made (a close, stats, a
    // failed plan's clean-up): as a connection that has done nothing.

    pub fn is_made(&self) -> bool {
        matches!(self, Tls::Made(_))
    }

    pub fn is_paused(&self) -> bool {
        matches!(self, Tls::Made(tls) if tls.is_paused())
    }

    pub fn abandon(&mut self) {
        if let Tls::Made(tls) = self {
            tls.abandon();
        }
    }

    pub fn output(&self) -> &[u8] {
        match self {
            Tls::Made(tls) => tls.output(),
            Tls::Planned { .. } => &[],
        }
    }

    pub fn consume_output(&mut self, n: usize) {
        if let Tls::Made(tls) = self {
            tls.consume_output(n);
        }
    }

    /// Queues close_notify; a connection not made has nothing to close.
    pub fn close(&mut self) {
        if let Tls::Made(tls) = self {
            tls.close();
        }
    }

    pub fn is_datagram(&self) -> bool {
        match self {
            Tls::Made(tls) => tls.is_datagram(),
            Tls::Planned { datagram, .. } => *datagram,
        }
    }

    pub fn release_buffers(&mut self) {
        if let Tls::Made(tls) = self {
            tls.release_buffers();
        }
    }
}

/// The rest is used only once the connection is made (the handshake has
/// started): reaching it before is a bug in the driver, not an input.
impl Deref for Tls {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Tls::Made(tls) => tls,
            Tls::Planned { .. } => panic!("TLS state used before it was made"),
        }
    }
}

impl DerefMut for Tls {
    fn deref_mut(&mut self) -> &mut Connection {
        match self {
            Tls::Made(tls) => tls,
            Tls::Planned { .. } => panic!("TLS state used before it was made"),
        }
    }
}
