%% @doc NIF stubs for rssl. The implementations live in Rust (src/nif/).
%% Internal: applications call `rssl'. Every function here raises badarg
%% for a socket that is not an rssl connection; the specs give what the
%% Rust side returns otherwise.
-module(rssl_nif).
-export([config_new/1, config_cached/1, config_clear_cache/0,
         adopt/8, connect/7, pending_options/1, park_hello/2, take_hello/1, handshake_rewait/2, transport/1, set_config/3, handshake/2, send/3, send_dirty/3, recv/3, recv_cancel/2,
         setopts/2, getopts/1, close/1, close_timed_out/1, live_connections/0, heap_in_use/0,
         downgrade_detach/1, downgrade_feed/2, downgrade_release/1,
         session_save/1, session_lookup/1, shutdown/3, controlling_process/2,
         sockname/1, peername/1, info/1, security_info/1, peercert/1, suites/2,
         set_sockopts/2, get_sockopts/2, getstat/1, send_cancel/2,
         cell_new/1, cell_get/1, cell_set/2, callback_reply/3, prf/5, renegotiate/2, update_keys/2, notify_passive/1,
         dist_ticket/1, priv_dir/0,
         dtls_check_hello/4]).
-on_load(init/0).

-include("rssl_socket.hrl").

%% A connection: `#sslsocket{}' with the NIF's resource as handle.
-type conn() :: #sslsocket{}.
%% A TLS configuration (a NIF resource) and a NIF cell holding one term.
-type config() :: reference().
-type cell() :: reference().

init() ->
    erlang:load_nif(filename:join(priv_dir(), "rssl_nif"), 0).

%% Where the library is (rssl_dist loads it as a port driver too, for
%% each connection: kept after the first time, which asks the code server).
-spec priv_dir() -> file:filename().
priv_dir() ->
    case persistent_term:get({?MODULE, priv_dir}, undefined) of
        undefined ->
            Dir = case code:priv_dir(rssl) of
                      {error, bad_name} ->
                          filename:join(filename:dirname(filename:dirname(code:which(?MODULE))),
                                        "priv");
                      Found -> Found
                  end,
            persistent_term:put({?MODULE, priv_dir}, Dir),
            Dir;
        Dir ->
            Dir
    end.

-define(NIF, erlang:nif_error({nif_not_loaded, ?MODULE})).

-spec config_new(map()) -> {ok, config()} | {error, term()}.
config_new(_Options) -> ?NIF.
-spec config_cached(map()) -> {ok, config()} | miss.
config_cached(_Options) -> ?NIF.
-spec config_clear_cache() -> ok.
config_clear_cache() -> ?NIF.
%% `Scheduler': the caller's scheduler id, which picks the connection's
%% poller (the one paired with that scheduler).
-spec adopt(integer(), config(), map(), [{atom(), term()}], map() | undefined,
            pid() | undefined, binary(), pos_integer()) -> {ok, conn()} | {error, term()}.
adopt(_Fd, _Config, _Peer, _SocketOptions, _Pending, _Pump, _Initial, _Scheduler) -> ?NIF.
%% A client connection on a TCP socket the NIF makes, gives the kernel
%% options `Sockopts' and connects (`Address' as a list of 4 or 8
%% integers); the handshake's first write waits for the connection.
-spec connect([non_neg_integer()], inet:port_number(), [{atom(), term()}], config(), map(),
              [{atom(), term()}], pos_integer()) -> {ok, conn()} | {error, term()}.
connect(_Address, _Port, _Sockopts, _Config, _Peer, _SocketOptions, _Scheduler) -> ?NIF.
-spec transport(conn()) -> pid() | undefined.
transport(_Socket) -> ?NIF.
-spec pending_options(conn()) -> map() | undefined.
pending_options(_Socket) -> ?NIF.
-spec park_hello(conn(), term()) -> ok.
park_hello(_Socket, _State) -> ?NIF.
-spec take_hello(conn()) -> term().
take_hello(_Socket) -> ?NIF.
-spec handshake_rewait(conn(), integer()) -> ok | {error, term()}.
handshake_rewait(_Socket, _Tag) -> ?NIF.
-spec set_config(conn(), config(), map()) -> ok | {error, term()}.
set_config(_Socket, _Config, _Peer) -> ?NIF.
-spec handshake(conn(), integer()) -> ok | {error, term()}.
handshake(_Socket, _Tag) -> ?NIF.
-spec send(conn(), iodata(), integer()) -> ok | wait | {error, term()}.
send(_Socket, _Data, _Tag) -> ?NIF.
-spec send_dirty(conn(), iodata(), integer()) -> ok | wait | {error, term()}.
send_dirty(_Socket, _Data, _Tag) -> ?NIF.
-spec recv(conn(), non_neg_integer(), integer()) -> {ok, term()} | wait | {error, term()}.
recv(_Socket, _Length, _Tag) -> ?NIF.
-spec recv_cancel(conn(), integer()) -> ok | gone.
recv_cancel(_Socket, _Tag) -> ?NIF.
-spec setopts(conn(), [{atom(), term()}]) -> ok | rejected | {error, term()}.
setopts(_Socket, _Options) -> ?NIF.
-spec getopts(conn()) -> [{atom(), term()}] | {error, term()}.
getopts(_Socket) -> ?NIF.
-spec close(conn()) -> ok.
close(_Socket) -> ?NIF.
-spec close_timed_out(conn()) -> ok.
close_timed_out(_Socket) -> ?NIF.
-spec downgrade_detach(conn()) ->
          {ok, integer(), reference(), binary(), binary(), boolean()} | {error, term()}.
downgrade_detach(_Socket) -> ?NIF.
-spec downgrade_feed(conn(), binary()) -> more | {closed, binary()} | {error, term()}.
downgrade_feed(_Socket, _Ciphertext) -> ?NIF.
-spec downgrade_release(reference()) -> ok.
downgrade_release(_Owned) -> ?NIF.
-spec session_save(conn()) -> ok | {error, term()}.
session_save(_Socket) -> ?NIF.
-spec session_lookup(binary()) -> {ok, binary()} | undefined.
session_lookup(_SessionId) -> ?NIF.
-spec live_connections() -> non_neg_integer().
live_connections() -> ?NIF.
%% Bytes of native heap in use (malloc's count, all threads): for leak
%% checks finer than the resident set.
-spec heap_in_use() -> non_neg_integer().
heap_in_use() -> ?NIF.
-spec shutdown(conn(), boolean(), boolean()) -> ok | {error, term()}.
shutdown(_Socket, _Read, _Write) -> ?NIF.
-spec controlling_process(conn(), pid()) -> ok | {error, closed | not_owner}.
controlling_process(_Socket, _Pid) -> ?NIF.
-spec sockname(conn()) -> {ok, {inet:ip_address(), inet:port_number()}} | {error, term()}.
sockname(_Socket) -> ?NIF.
-spec peername(conn()) -> {ok, {inet:ip_address(), inet:port_number()}} | {error, term()}.
peername(_Socket) -> ?NIF.
-spec info(conn()) -> {ok, [{atom(), term()}]} | {error, term()}.
info(_Socket) -> ?NIF.
-spec security_info(conn()) -> {ok, [{atom(), binary()}]} | {error, term()}.
security_info(_Socket) -> ?NIF.
-spec peercert(conn()) -> {ok, binary()} | {error, term()}.
peercert(_Socket) -> ?NIF.
-spec suites(iodata(), iodata()) -> {ok, [map()]} | {error, term()}.
suites(_CipherList, _Tls13Suites) -> ?NIF.
-spec set_sockopts(conn(), [{atom(), term()}]) -> ok | {error, term()}.
set_sockopts(_Socket, _Options) -> ?NIF.
-spec get_sockopts(conn(), [atom()]) -> {ok, [{atom(), term()}]} | {error, term()}.
get_sockopts(_Socket, _Names) -> ?NIF.
-spec getstat(conn()) -> {ok, [{atom(), non_neg_integer()}]} | {error, term()}.
getstat(_Socket) -> ?NIF.
-spec send_cancel(conn(), integer()) -> ok | gone.
send_cancel(_Socket, _Tag) -> ?NIF.
-spec cell_new(term()) -> cell().
cell_new(_Term) -> ?NIF.
-spec cell_get(cell()) -> term().
cell_get(_Cell) -> ?NIF.
-spec cell_set(cell(), term()) -> ok.
cell_set(_Cell, _Term) -> ?NIF.
-spec callback_reply(conn(), non_neg_integer(), term()) -> ok.
callback_reply(_Socket, _Call, _Answer) -> ?NIF.
-spec prf(conn(), binary() | master_secret, binary(), [binary() | atom()], non_neg_integer()) ->
          {ok, binary()} | {error, term()}.
prf(_Socket, _Secret, _Label, _Seed, _Length) -> ?NIF.
-spec renegotiate(conn(), integer()) -> ok | {error, term()}.
renegotiate(_Socket, _Tag) -> ?NIF.
-spec update_keys(conn(), boolean()) -> ok | {error, term()}.
update_keys(_Socket, _PeerToo) -> ?NIF.
-spec notify_passive(conn()) -> ok | {error, term()}.
notify_passive(_Socket) -> ?NIF.
%% The distribution carrier hands a connection to its port driver
%% (rssl_dist): `{Id, Ticket}', Id for the port's attach command, Ticket
%% to keep until the port has it (dropped, it lets the connection go).
-spec dist_ticket(conn()) -> {non_neg_integer(), reference()}.
dist_ticket(_Socket) -> ?NIF.
-spec dtls_check_hello(config(), binary(), binary(), binary()) -> ok | {reply, binary()} | ignore.
dtls_check_hello(_Config, _Secret, _Peer, _Datagram) -> ?NIF.
