//! inet options that live in the kernel socket (setsockopt/getsockopt).

use std::io;
use std::os::fd::RawFd;

/// An inet option backed by a socket option, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOpt {
    NoDelay(bool),
    KeepAlive(bool),
    SndBuf(i32),
    RecBuf(i32),
    ReuseAddr(bool),
    Tos(i32),
    Tclass(i32),
    Priority(i32),
    /// `{linger, {OnOff, Seconds}}`.
    Linger(bool, i32),
    Ipv6Only(bool),
}

impl SockOpt {
    /// The inet option name.
    pub fn name(self) -> &'static str {
        match self {
            SockOpt::NoDelay(_) => "nodelay",
            SockOpt::KeepAlive(_) => "keepalive",
            SockOpt::SndBuf(_) => "sndbuf",
            SockOpt::RecBuf(_) => "recbuf",
            SockOpt::ReuseAddr(_) => "reuseaddr",
            SockOpt::Tos(_) => "tos",
            SockOpt::Tclass(_) => "tclass",
            SockOpt::Priority(_) => "priority",
            SockOpt::Linger(..) => "linger",
            SockOpt::Ipv6Only(_) => "ipv6_v6only",
        }
    }

    /// The option named `name` with a placeholder value (for reading).
    pub fn named(name: &str) -> Option<SockOpt> {
        Some(match name {
            "nodelay" => SockOpt::NoDelay(false),
            "keepalive" => SockOpt::KeepAlive(false),
            "sndbuf" => SockOpt::SndBuf(0),
            "recbuf" => SockOpt::RecBuf(0),
            "reuseaddr" => SockOpt::ReuseAddr(false),
            "tos" => SockOpt::Tos(0),
            "tclass" => SockOpt::Tclass(0),
            "priority" => SockOpt::Priority(0),
            "linger" => SockOpt::Linger(false, 0),
            "ipv6_v6only" => SockOpt::Ipv6Only(false),
            _ => return None,
        })
    }

    fn level_and_name(self) -> (libc::c_int, libc::c_int) {
        match self {
            SockOpt::NoDelay(_) => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            SockOpt::KeepAlive(_) => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            SockOpt::SndBuf(_) => (libc::SOL_SOCKET, libc::SO_SNDBUF),
            SockOpt::RecBuf(_) => (libc::SOL_SOCKET, libc::SO_RCVBUF),
            SockOpt::ReuseAddr(_) => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            SockOpt::Tos(_) => (libc::IPPROTO_IP, libc::IP_TOS),
            SockOpt::Tclass(_) => (libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
            SockOpt::Priority(_) => (libc::SOL_SOCKET, libc::SO_PRIORITY),
            SockOpt::Linger(..) => (libc::SOL_SOCKET, libc::SO_LINGER),
            SockOpt::Ipv6Only(_) => (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        }
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T and the length passed is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn getsockopt<T: Default>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live T and `len` holds its size; the kernel writes at most that.
    let ret = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

pub fn set(fd: RawFd, opt: SockOpt) -> io::Result<()> {
    let (level, name) = opt.level_and_name();
    match opt {
        SockOpt::Linger(on, secs) => {
            let l = libc::linger {
                l_onoff: on as libc::c_int,
                l_linger: secs,
            };
            setsockopt(fd, level, name, &l)
        }
        SockOpt::NoDelay(b)
        | SockOpt::KeepAlive(b)
        | SockOpt::ReuseAddr(b)
        | SockOpt::Ipv6Only(b) => setsockopt(fd, level, name, &(b as libc::c_int)),
        SockOpt::SndBuf(n)
        | SockOpt::RecBuf(n)
        | SockOpt::Tos(n)
        | SockOpt::Tclass(n)
        | SockOpt::Priority(n) => setsockopt(fd, level, name, &n),
    }
}

/// Reads the current value of the option `like` names.
pub fn get(fd: RawFd, like: SockOpt) -> io::Result<SockOpt> {
    let (level, name) = like.level_and_name();
    Ok(match like {
        SockOpt::Linger(..) => {
            let l: LingerValue = getsockopt(fd, level, name)?;
            SockOpt::Linger(l.0.l_onoff != 0, l.0.l_linger)
        }
        SockOpt::NoDelay(_) => SockOpt::NoDelay(getsockopt::<libc::c_int>(fd, level, name)? != 0),
        SockOpt::KeepAlive(_) => {
            SockOpt::KeepAlive(getsockopt::<libc::c_int>(fd, level, name)? != 0)
        }
        SockOpt::ReuseAddr(_) => {
            SockOpt::ReuseAddr(getsockopt::<libc::c_int>(fd, level, name)? != 0)
        }
        SockOpt::Ipv6Only(_) => SockOpt::Ipv6Only(getsockopt::<libc::c_int>(fd, level, name)? != 0),
        SockOpt::SndBuf(_) => SockOpt::SndBuf(getsockopt(fd, level, name)?),
        SockOpt::RecBuf(_) => SockOpt::RecBuf(getsockopt(fd, level, name)?),
        SockOpt::Tos(_) => SockOpt::Tos(getsockopt(fd, level, name)?),
        SockOpt::Tclass(_) => SockOpt::Tclass(getsockopt(fd, level, name)?),
        SockOpt::Priority(_) => SockOpt::Priority(getsockopt(fd, level, name)?),
    })
}

struct LingerValue(libc::linger);

impl Default for LingerValue {
    fn default() -> Self {
        LingerValue(libc::linger {
            l_onoff: 0,
            l_linger: 0,
        })
    }
}

/// Byte and call counts on the socket, as `inet:getstat/1` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub recv_oct: u64,
    pub recv_cnt: u64,
    pub recv_max: u64,
    pub send_oct: u64,
    pub send_cnt: u64,
    pub send_max: u64,
    /// Bytes accepted but not yet written to the socket.
    pub send_pend: u64,
}

impl Stats {
    pub fn received(&mut self, n: usize) {
        self.recv_oct += n as u64;
        self.recv_cnt += 1;
        self.recv_max = self.recv_max.max(n as u64);
    }

    pub fn sent(&mut self, n: usize) {
        self.send_oct += n as u64;
        self.send_cnt += 1;
        self.send_max = self.send_max.max(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_get_on_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        set(fd, SockOpt::NoDelay(true)).unwrap();
        assert_eq!(
            get(fd, SockOpt::NoDelay(false)).unwrap(),
            SockOpt::NoDelay(true)
        );
        set(fd, SockOpt::Linger(true, 3)).unwrap();
        assert_eq!(
            get(fd, SockOpt::Linger(false, 0)).unwrap(),
            SockOpt::Linger(true, 3)
        );
        assert_eq!(SockOpt::named("keepalive"), Some(SockOpt::KeepAlive(false)));
        assert_eq!(SockOpt::named("mode"), None);
    }
}
