//! The socket options the driver emulates on the plaintext stream.

use super::packet::Packet;

/// inet's `{active, _}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    False,
    Once,
    True,
    /// Messages left before the socket turns passive (always > 0).
    Count(u32),
}

impl Active {
    /// Applies `{active, N}` as OTP's `ssl` does: N <= 0 makes the socket
    /// passive (and `{ssl_passive, S}` is due); N > 0 is added to a running
    /// count, which may not pass 32767 (None: the option is refused).
    pub fn add_count(self, n: i32) -> Option<(Active, bool)> {
        if n <= 0 {
            return Some((Active::False, true));
        }
        let current = match self {
            Active::Count(c) => c as i64,
            _ => 0,
        };
        let total = current + n as i64;
        (total <= 32767).then_some((Active::Count(total as u32), false))
    }

    /// After one message is delivered: the new mode and whether the
    /// socket just turned passive by running out of its count.
    pub fn after_message(self) -> (Active, bool) {
        match self {
            Active::Once => (Active::False, false),
            Active::Count(1) => (Active::False, true),
            Active::Count(n) => (Active::Count(n - 1), false),
            other => (other, false),
        }
    }

    pub fn is_active(self) -> bool {
        self != Active::False
    }
}

/// How plaintext is handed to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    pub active: Active,
    pub packet: Packet,
    /// `{packet, raw}` rather than `{packet, 0}` (getopts says which).
    pub packet_raw_name: bool,
    /// Largest packet accepted (0: no limit).
    pub packet_size: usize,
    /// `{mode, binary}` when true, `{mode, list}` when false.
    pub binary: bool,
    /// `{header, N}`: in binary mode, the first N bytes as a list.
    pub header: usize,
    /// `{exit_on_close, false}` keeps the socket writable after the peer closed.
    pub exit_on_close: bool,
    /// inet options kept for `getopts` and for the Erlang side's send wait.
    pub inet: InetEmulated,
}

/// inet options that inet itself emulates in user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetEmulated {
    /// Milliseconds; None is `infinity`.
    pub send_timeout: Option<u64>,
    pub send_timeout_close: bool,
    pub delay_send: bool,
    pub buffer: usize,
    /// `buffer` was set by the user: `recbuf` no longer moves it.
    pub buffer_set: bool,
    pub high_watermark: usize,
    pub low_watermark: usize,
    pub show_econnreset: bool,
}

impl Default for InetEmulated {
    /// inet's defaults on Linux.
    fn default() -> Self {
        InetEmulated {
            send_timeout: None,
            send_timeout_close: false,
            delay_send: false,
            buffer: 1460,
            buffer_set: false,
            high_watermark: 8192,
            low_watermark: 4096,
            show_econnreset: false,
        }
    }
}

impl Default for SocketOptions {
    /// The defaults of the `ssl` reference: list, raw, header 0, active.
    fn default() -> Self {
        SocketOptions {
            active: Active::True,
            packet: Packet::Raw,
            packet_raw_name: false,
            packet_size: 0,
            binary: false,
            header: 0,
            exit_on_close: true,
            inet: InetEmulated::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_n_counts_down_to_passive() {
        let (a, passive) = Active::False.add_count(2).unwrap();
        assert_eq!((a, passive), (Active::Count(2), false));
        let (a, passive) = a.after_message();
        assert_eq!((a, passive), (Active::Count(1), false));
        assert_eq!(a.after_message(), (Active::False, true));
        assert_eq!(Active::Count(5).add_count(-4), Some((Active::False, true)));
        assert_eq!(Active::Count(4).add_count(32767), None);
        assert_eq!(Active::Once.after_message(), (Active::False, false));
        assert_eq!(Active::True.after_message(), (Active::True, false));
    }
}
