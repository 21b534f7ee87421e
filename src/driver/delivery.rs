//! Handing plaintext out: to the owner in active mode, to a waiting
//! `recv` in passive mode, and the end of the stream after the data.

use super::host::{Failure, Host, Message, Outbox, Reply};
use super::input::Taken;
use super::state::{Phase, State};

impl<H: Host> State<H> {
    /// Hands out plaintext by the active mode, or to a waiting recv.
    pub fn deliver(&mut self, outbox: &mut dyn Outbox<H>) {
        if self.phase != Phase::Established || self.end_told() {
            return;
        }
        for ticket in self.tls.take_tickets() {
            outbox.to_owner(&self.owner, &self.options, Message::SessionTicket(&ticket));
        }
        loop {
            let options = self.options;
            if options.active.is_active() && self.direct_ready() && self.buffered().is_empty() {
                let packet = self.direct.take().expect("checked").buf;
                outbox.packet_to_owner(&self.owner, &options, packet);
                let (active, passive) = options.active.after_message();
                self.options.active = active;
                if passive {
                    outbox.to_owner(&self.owner, &self.options, Message::Passive);
                }
            } else if options.active.is_active() {
                let (packet, packet_size) = self.framing();
                let frame = packet.next_frame(self.buffered(), packet_size);
                match frame {
                    Ok(Some(f)) => {
                        let start = self.plain_pos + f.start;
                        let packet = &self.plain[start..start + f.len];
                        outbox.to_owner(&self.owner, &options, Message::Data(packet));
                        self.options.packet = options.packet.after(packet);
                        self.consume(self.plain_pos + f.consumed);
                        let (active, passive) = options.active.after_message();
                        self.options.active = active;
                        if passive {
                            outbox.to_owner(&self.owner, &self.options, Message::Passive);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // Told below, as the end of the stream.
                        self.invalid_packet(false);
                        break;
                    }
                }
            } else if let Some((_, len)) = self.waiters.recv {
                match self.take_packet(len) {
                    Taken::Packet(range, end) => {
                        let (waiter, _) = self.waiters.recv.take().expect("checked");
                        let packet = &self.plain[range];
                        outbox.reply(waiter, &options, Reply::Recv(Ok(packet)));
                        self.options.packet = options.packet.after(packet);
                        self.consume(end);
                    }
                    Taken::Failed(failure) => {
                        let (waiter, _) = self.waiters.recv.take().expect("checked");
                        outbox.reply(waiter, &options, Reply::Recv(Err(failure)));
                        break;
                    }
                    Taken::Nothing => break,
                }
            } else {
                break;
            }
        }
        if self.input_ended() && self.options.active.is_active() && !self.end_told() {
            // Anything left is an incomplete packet the peer will never finish.
            self.discard_plain();
            let failure = self.tell_end();
            if failure != Failure::Closed {
                outbox.to_owner(&self.owner, &self.options, Message::Error(&failure));
            }
            // A TLS alert or an invalid packet is the end; anything else
            // (a reset...) is followed by the close.
            if !matches!(failure, Failure::Tls(_) | Failure::InvalidPacket(_)) {
                outbox.to_owner(&self.owner, &self.options, Message::Closed);
            }
        }
    }

    /// Answers every blocked caller with `failure`.
    pub fn answer_waiters(&mut self, outbox: &mut dyn Outbox<H>, failure: Failure) {
        let options = self.options;
        if let Some(w) = self.waiters.handshake.take() {
            outbox.reply(w, &options, Reply::Handshake(Err(failure.clone())));
        }
        if let Some((w, _)) = self.waiters.recv.take() {
            outbox.reply(w, &options, Reply::Recv(Err(failure.clone())));
        }
        self.reply_senders(outbox, Err(failure.clone()));
        if let Some(w) = self.waiters.renegotiate.take() {
            outbox.reply(w, &options, Reply::Send(Err(failure)));
        }
    }
}
