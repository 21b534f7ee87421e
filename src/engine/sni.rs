//! Server-side SNI: choosing the configuration for the host name a client
//! asks for (OTP's `sni_hosts` and `sni_fun`).
//!
//! The chosen configuration supplies the certificate, key, trusted CAs,
//! peer verification (mode, depth, callbacks) and ALPN; protocol versions,
//! cipher lists and session settings stay those of the listening
//! configuration, because the client's hello already went through them.

use super::config::Config;
use super::connection::guard;
use super::error::Error;
use super::ffi;
use super::options::{Options, Role};
use foreign_types::ForeignTypeRef;
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{NameType, SniError, Ssl, SslAlert, SslRef};
use std::task::Poll;

/// What the SNI function decides for a host name.
#[derive(Clone)]
pub enum SniChoice {
    /// Go on with the listening configuration.
    Default,
    /// Use this (server) configuration.
    Use(Config),
    /// Fail the handshake with an `unrecognized_name` alert.
    Reject,
}

/// Called with the host name the client sent (not called when it sent
/// none). Pending: asked again when the handshake resumes (`pause.rs`).
pub type SniFn = dyn Fn(&str) -> Poll<SniChoice> + Send + Sync;

/// Keeps the chosen configuration alive as long as the connection.
static CHOSEN: Lazy<Index<Ssl, Config>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<(), Error> {
    if o.role != Role::Server || (o.sni_hosts.is_empty() && o.sni_fun.is_none()) {
        return Ok(());
    }
    if let Some((host, _)) = o
        .sni_hosts
        .iter()
        .find(|(_, config)| config.role() != Role::Server)
    {
        return Err(Error::Option(
            "sni_hosts".into(),
            format!("{host}: not a server configuration"),
        ));
    }
    let hosts = o.sni_hosts.clone();
    let fun = o.sni_fun.clone();
    b.set_servername_callback(move |ssl, alert| {
        guard(Err(SniError::ALERT_FATAL), || {
            let Some(name) = ssl.servername(NameType::HOST_NAME).map(str::to_string) else {
                return Ok(());
            };
            let choice = match hosts.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name)) {
                Some((_, config)) => SniChoice::Use(config.clone()),
                None => match &fun {
                    // No answer (the handshake is being abandoned): reject.
                    Some(f) => super::pause::answer(ssl, || f(&name)).unwrap_or(SniChoice::Reject),
                    None => SniChoice::Default,
                },
            };
            match choice {
                SniChoice::Default => Ok(()),
                SniChoice::Reject => {
                    *alert = SslAlert::UNRECOGNIZED_NAME;
                    Err(SniError::ALERT_FATAL)
                }
                SniChoice::Use(config) if config.role() != Role::Server => {
                    *alert = SslAlert::INTERNAL_ERROR;
                    Err(SniError::ALERT_FATAL)
                }
                SniChoice::Use(config) => {
                    switch(ssl, config);
                    Ok(())
                }
            }
        })
    });
    Ok(())
}

/// Moves the connection to `config`'s context, with its verification.
pub(crate) fn switch(ssl: &mut SslRef, config: Config) {
    if ssl.set_ssl_context(config.context()).is_err() {
        return;
    }
    // SAFETY: both the SSL and `config`'s context are live; the calls copy
    // plain values (mode, depth, a function pointer).
    unsafe {
        let ctx = config.context().as_ptr();
        let mode = openssl_sys::SSL_CTX_get_verify_mode(ctx);
        openssl_sys::SSL_set_verify(ssl.as_ptr(), mode, ffi::SSL_CTX_get_verify_callback(ctx));
        ffi::SSL_set_verify_depth(ssl.as_ptr(), ffi::SSL_CTX_get_verify_depth(ctx));
    }
    ssl.set_ex_data(*CHOSEN, config);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::connection::tests::{
        client_options, handshake_pair, pair, server_options, test_pki,
    };
    use crate::engine::hooks::Callback;
    use crate::engine::{Error, Progress};
    use std::sync::Arc;

    #[test]
    fn host_chooses_the_configuration() {
        let default = test_pki();
        let other = test_pki();
        let other_config = Config::build(server_options(&other)).unwrap();
        let mut so = server_options(&default);
        so.sni_hosts = vec![("LOCALHOST".into(), other_config)];
        // The client trusts only the CA of the SNI host's certificate.
        let (mut client, mut server) = pair(client_options(&other), so.clone(), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));

        so.sni_hosts.clear();
        so.sni_fun = Some(Callback(Arc::new(|_: &str| Poll::Ready(SniChoice::Reject))));
        let (mut client, mut server) = pair(client_options(&default), so, "localhost");
        let (_, s) = handshake_pair(&mut client, &mut server);
        match s {
            Err(Error::Alert { alert, local, .. }) => {
                assert_eq!((alert.name(), local), ("unrecognized_name", true))
            }
            other => panic!("server: {other:?}"),
        }
    }
}
