%% @doc NIF stubs for rssl. The implementations live in Rust (src/nif/).
-module(rssl_nif).
-export([config_new/1, config_cached/1, config_clear_cache/0,
         adopt/7, pending_options/1, transport/1, set_config/3, handshake/2, send/3, send_dirty/3, recv/3, recv_cancel/2,
         setopts/2, getopts/1, close/1, close_timed_out/1, live_connections/0, shutdown/3, controlling_process/2,
         sockname/1, peername/1, info/1, peercert/1, suites/2,
         set_sockopts/2, get_sockopts/2, getstat/1, send_cancel/2,
         cell_new/1, cell_get/1, cell_set/2, callback_reply/3, prf/5, renegotiate/2, update_keys/2, notify_passive/1,
         send_packets/3, send_packets_dirty/3]).
-on_load(init/0).

init() ->
    Dir = case code:priv_dir(rssl) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              D -> D
          end,
    erlang:load_nif(filename:join(Dir, "rssl_nif"), 0).

-define(NIF, erlang:nif_error({nif_not_loaded, ?MODULE})).

config_new(_Options) -> ?NIF.
config_cached(_Options) -> ?NIF.
config_clear_cache() -> ?NIF.
adopt(_Fd, _Config, _Peer, _SocketOptions, _Pending, _Pump, _Initial) -> ?NIF.
transport(_Socket) -> ?NIF.
pending_options(_Socket) -> ?NIF.
set_config(_Socket, _Config, _Peer) -> ?NIF.
handshake(_Socket, _Tag) -> ?NIF.
send(_Socket, _Data, _Tag) -> ?NIF.
send_dirty(_Socket, _Data, _Tag) -> ?NIF.
recv(_Socket, _Length, _Tag) -> ?NIF.
recv_cancel(_Socket, _Tag) -> ?NIF.
setopts(_Socket, _Options) -> ?NIF.
getopts(_Socket) -> ?NIF.
close(_Socket) -> ?NIF.
close_timed_out(_Socket) -> ?NIF.
live_connections() -> ?NIF.
shutdown(_Socket, _Read, _Write) -> ?NIF.
controlling_process(_Socket, _Pid) -> ?NIF.
sockname(_Socket) -> ?NIF.
peername(_Socket) -> ?NIF.
info(_Socket) -> ?NIF.
peercert(_Socket) -> ?NIF.
suites(_CipherList, _Tls13Suites) -> ?NIF.
set_sockopts(_Socket, _Options) -> ?NIF.
get_sockopts(_Socket, _Names) -> ?NIF.
getstat(_Socket) -> ?NIF.
send_cancel(_Socket, _Tag) -> ?NIF.
cell_new(_Term) -> ?NIF.
cell_get(_Cell) -> ?NIF.
cell_set(_Cell, _Term) -> ?NIF.
callback_reply(_Socket, _Call, _Answer) -> ?NIF.
prf(_Socket, _Secret, _Label, _Seed, _Length) -> ?NIF.
renegotiate(_Socket, _Tag) -> ?NIF.
update_keys(_Socket, _PeerToo) -> ?NIF.
notify_passive(_Socket) -> ?NIF.
send_packets(_Socket, _Packets, _Tag) -> ?NIF.
send_packets_dirty(_Socket, _Packets, _Tag) -> ?NIF.
