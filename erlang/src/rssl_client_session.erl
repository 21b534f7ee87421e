%% @private
%% @doc A client's sessions to resume, for TLS (rssl) and DTLS (rssl_dtls)
%% alike: the session key a client's saved sessions are kept under (per
%% server, as OTP's ssl keys them), and the sessions given by hand
%% (`{reuse_sessions, save}', `{reuse_session, Id | {Id, Data}}').
-module(rssl_client_session).

-export([by_hand/1, peer/4, save/2]).

-type by_hand() :: none | save | binary().
-export_type([by_hand/0]).

%% @doc Takes the sessions given by hand out of the options:
%% `{reuse_sessions, save}' (`save': a new session, kept by its id once
%% the handshake is over), or a session to offer (`{reuse_session, Id}'
%% looked up among those saved, or `{reuse_session, {Id, Data}}').
-spec by_hand(map()) -> {by_hand(), map()}.
by_hand(Tls = #{save_session := true}) ->
    {save, maps:remove(save_session, Tls)};
by_hand(Tls = #{offer_session := {id, Id}}) ->
    Offer = case rssl_nif:session_lookup(Id) of
                {ok, Data} -> Data;
                undefined -> none
            end,
    {Offer, maps:remove(offer_session, Tls)};
by_hand(Tls = #{offer_session := {data, Data}}) ->
    {Data, maps:remove(offer_session, Tls)};
by_hand(Tls) ->
    {none, Tls}.

%% @doc The client's peer map with what it offers: nothing with `save' (a
%% new session), else the session given by hand, if any, and the session
%% key, under which the sessions of this server are saved and offered:
%% the host as given (or the address) and the port. `Peername' is the
%% transport's peername/1 answer; without one, no key.
-spec peer(map(), by_hand(), {ok, {inet:ip_address(), inet:port_number()}} | term(),
           rssl:host() | undefined) -> map().
peer(Peer, save, _Peername, _Host) ->
    Peer;
peer(Peer0, Session, Peername, Host) ->
    Peer = case Session of
               Data when is_binary(Data) -> Peer0#{session => Data};
               none -> Peer0
           end,
    case Peername of
        {ok, {Address, Port}} ->
            Name = case Host of
                       undefined -> Address;
                       _ -> Host
                   end,
            %% Made without io_lib: this runs on every connect.
            Key = <<(host_text(Name))/binary, ":", (integer_to_binary(Port))/binary>>,
            Peer#{session_key => Key};
        _ ->
            Peer
    end.

%% @doc After the handshake: with `save', the session is kept (by its id)
%% before the connection is handed over.
-spec save(by_hand(), Result) -> Result when Result :: {ok, rssl:sslsocket()} | term().
save(save, {ok, Socket} = Ok) ->
    _ = rssl_nif:session_save(Socket),
    Ok;
save(_, Result) ->
    Result.

host_text(Host) when is_tuple(Host) -> list_to_binary(inet:ntoa(Host));
host_text(Host) when is_atom(Host) -> atom_to_binary(Host);
host_text(Host) ->
    case unicode:characters_to_binary(Host) of
        Bin when is_binary(Bin) -> Bin;
        _ -> term_to_binary(Host)
    end.
