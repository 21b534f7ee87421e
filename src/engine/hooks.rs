//! Application callbacks in a configuration, and what a built context keeps
//! for the OpenSSL callbacks that call them.
//!
//! [`Callback`] makes a closure part of [`super::Options`]: it compares and
//! hashes by identity, so equal options still share one context and a new
//! closure makes a new one.

use super::error::Error;
use super::options::Options;
use super::verify::{PartialChainFn, VerifyFn};
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{SslContext, SslContextBuilder, SslContextRef};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A shared application callback; equal only to clones of itself.
pub struct Callback<F: ?Sized>(pub Arc<F>);

impl<F: ?Sized> Callback<F> {
    fn address(&self) -> *const () {
        Arc::as_ptr(&self.0) as *const ()
    }
}

impl<F: ?Sized> Clone for Callback<F> {
    fn clone(&self) -> Self {
        Callback(Arc::clone(&self.0))
    }
}

impl<F: ?Sized> PartialEq for Callback<F> {
    fn eq(&self, other: &Self) -> bool {
        self.address() == other.address()
    }
}

impl<F: ?Sized> Eq for Callback<F> {}

impl<F: ?Sized> Hash for Callback<F> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.address().hash(state)
    }
}

impl<F: ?Sized> fmt::Debug for Callback<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Callback({:p})", self.address())
    }
}

impl<F: ?Sized> std::ops::Deref for Callback<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.0
    }
}

/// What the raw OpenSSL callbacks of one context need, kept in its ex_data
/// (found through the connection's current context, so an SNI switch
/// brings the chosen configuration's hooks).
pub(crate) struct Hooks {
    pub verify_fun: Option<Callback<VerifyFn>>,
    pub partial_chain: Option<Callback<PartialChainFn>>,
    /// crl_check best_effort: a missing CRL is no failure.
    pub crl_best_effort: bool,
    /// Server: NPN protocols in wire format.
    pub npn_advertised: Vec<u8>,
    /// Client: NPN selection.
    pub npn_preferred: Option<super::npn::NpnPreference>,
    /// Client: stops at the ServerHello (`hello.rs`).
    pub hello: Option<Callback<super::hello::HelloFn>>,
    /// Handshakes call application callbacks (see `pause.rs`).
    pub has_callbacks: bool,
    /// Those callbacks may answer later (the C API's asynchronous ones).
    pub callbacks_may_pause: bool,
}

static HOOKS: Lazy<Index<SslContext, Hooks>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));

/// The hooks of a context built by this engine.
pub(crate) fn of(context: &SslContextRef) -> Option<&Hooks> {
    context.ex_data(*HOOKS)
}

/// Installs every optional feature of `o` on a context being built; called
/// last by `config.rs`, so it may override defaults set there.
pub(crate) fn install(b: &mut SslContextBuilder, o: &Options) -> Result<(), Error> {
    if o.fallback && o.role == super::Role::Client {
        b.set_mode(openssl::ssl::SslMode::SEND_FALLBACK_SCSV);
    }
    if o.client_renegotiation && o.role == super::Role::Server {
        // OpenSSL 3 refuses client-initiated renegotiation unless asked;
        // OTP allows it by default.
        b.set_options(openssl::ssl::SslOptions::from_bits_retain(
            super::ffi::SSL_OP_ALLOW_CLIENT_RENEGOTIATION,
        ));
    }
    super::session::install(b, o)?;
    let crl_best_effort = super::crl::install(b, o)?;
    super::verify::install(b, o, crl_best_effort);
    super::sni::install(b, o)?;
    super::psk::install(b, o)?;
    super::npn::install(b, o)?;
    super::hello::install(b, o);
    b.set_ex_data(
        *HOOKS,
        Hooks {
            verify_fun: o.verify_fun.clone(),
            partial_chain: o.partial_chain.clone(),
            crl_best_effort,
            npn_advertised: super::npn::wire(&o.npn_advertised),
            npn_preferred: o.npn_preferred.clone(),
            hello: o.hello.clone(),
            has_callbacks: o.has_callbacks(),
            callbacks_may_pause: o.callbacks_may_pause && o.has_callbacks(),
        },
    );
    Ok(())
}
