%% The handshake as the caller of connect/handshake waits for it: its
%% deadline, and the Erlang funs it calls back (sni_fun, verify_fun,
%% partial_chain, user_lookup_fun, reuse_session), run in a process of the
%% handshake while the native side pauses it. Also the NIF configuration
%% for validated TLS options, which an sni_fun's answer needs too.
-module(rssl_handshake).

-export([run/2, run/3, continue/3, cancel/1, config/2, deadline/1, remaining/1]).

%% A point in monotonic time (milliseconds), or never.
-type deadline() :: integer() | infinity.
-export_type([deadline/0]).

%% The NIF configuration for validated TLS options. Each `sni_hosts' entry
%% becomes a configuration of its own: the listener's options with the
%% host's merged over them.
-spec config(client | server, map()) -> {ok, reference()} | {error, term()}.
config(server, Tls = #{sni_fun := Fun}) when is_function(Fun) ->
    %% The fun runs in the handshake's callback process (run/2), with
    %% the listener's options to merge its answer over.
    Base = maps:remove(sni_fun, Tls),
    config(server, Base#{sni_fun => {Fun, Base}});
config(Role, Tls = #{sni_hosts := Hosts}) ->
    Base = maps:remove(sni_hosts, Tls),
    try
        HostConfig = fun(HostTls) ->
                             Map = rssl_options:tls_map(Role, maps:merge(Base, HostTls)),
                             rssl_nif:config_new(Map)
                     end,
        Configs = [case HostConfig(HostTls) of
                       {ok, C} -> {unicode:characters_to_binary(Host), C};
                       {error, _} = Error -> throw(Error)
                   end || {Host, HostTls} <- Hosts],
        rssl_nif:config_new(rssl_options:tls_map(Role, Base#{sni_hosts => Configs}))
    catch
        throw:{error, _} = Error -> Error
    end;
config(Role, Tls) ->
    Map = rssl_options:tls_map(Role, Tls),
    %% Files are read (on a dirty scheduler) only the first time.
    case rssl_nif:config_cached(Map) of
        {ok, _} = Cached -> Cached;
        miss -> rssl_nif:config_new(Map)
    end.

%% A server's handshake, with the TLS options it was accepted with.
-spec run(rssl:sslsocket(), deadline()) ->
          {ok, rssl:sslsocket()} | {ok, rssl:sslsocket(), map()} | {error, term()}.
run(Socket, Deadline) ->
    Tls = case rssl_nif:pending_options(Socket) of
              Map when is_map(Map) -> Map;
              _ -> #{}
          end,
    run(Socket, Deadline, Tls#{role => server}).

%% `Tls' (with its `role') is what `{handshake, hello}' needs to report the
%% hello and to build the configuration handshake_continue/3 adds to.
-spec run(rssl:sslsocket(), deadline(), map()) ->
          {ok, rssl:sslsocket()} | {ok, rssl:sslsocket(), map()} | {error, term()}.
run(Socket, Deadline, Tls) ->
    Tag = erlang:unique_integer(),
    case rssl_nif:handshake(Socket, Tag) of
        ok -> await_handshake(Socket, Tag, Deadline, undefined, Tls);
        Error ->
            rssl_nif:close(Socket),
            Error
    end.

%% handshake_continue/3: the handshake stopped after the hello goes on,
%% with `Options' over those it had (a certificate for the name the client
%% asked for, verification...), until `Deadline'. Any process may continue
%% it, as with OTP: the caller becomes the one the handshake answers.
-spec continue(rssl:sslsocket(), [rssl:tls_option()], deadline()) ->
          {ok, rssl:sslsocket()} | {error, term()}.
continue(Socket, Options, Deadline) ->
    case rssl_nif:take_hello(Socket) of
        {Call, Tls = #{role := Role}} ->
            case continue_with(Socket, Call, Tls, rssl_options:split(Role, Options)) of
                {ok, Tag, Tls1} ->
                    await_handshake(Socket, Tag, Deadline, undefined, Tls1);
                Error ->
                    %% Bad options: the handshake stays stopped at the hello.
                    rssl_nif:park_hello(Socket, {Call, Tls}),
                    Error
            end;
        undefined ->
            {error, einval}
    end.

continue_with(Socket, Call, Tls = #{role := Role}, {ok, #{tls := Extra, emulated := Emulated}}) ->
    case continue_answer(Role, Tls, Extra) of
        {ok, Answer, Tls1} ->
            Tag = erlang:unique_integer(),
            case rssl_nif:handshake_rewait(Socket, Tag) of
                ok ->
                    ok = rssl_nif:setopts(Socket, Emulated),
                    rssl_nif:callback_reply(Socket, Call, Answer),
                    {ok, Tag, Tls1};
                Error ->
                    Error
            end;
        Error ->
            Error
    end;
continue_with(_Socket, _Call, _Tls, Error) ->
    Error.

continue_answer(_Role, Tls, Extra) when map_size(Extra) =:= 0 ->
    {ok, default, Tls};
continue_answer(Role, Tls, Extra) ->
    Tls1 = maps:remove(handshake, maps:merge(Tls, Extra)),
    case config(Role, maps:remove(role, Tls1)) of
        {ok, Config} -> {ok, {config, Config}, Tls1};
        Error -> Error
    end.

%% handshake_cancel/1: the handshake stopped after the hello ends with a
%% user_canceled alert, and the connection is closed.
-spec cancel(rssl:sslsocket()) -> ok | {error, term()}.
cancel(Socket) ->
    case rssl_nif:take_hello(Socket) of
        {Call, Tls} ->
            Tag = erlang:unique_integer(),
            case rssl_nif:handshake_rewait(Socket, Tag) of
                ok ->
                    rssl_nif:callback_reply(Socket, Call, reject),
                    %% The alert is out once the handshake has failed with it.
                    receive
                        {rssl_reply, Tag, {error, Reason}} -> rssl_logger:handshake_failed(Tls, Reason);
                        {rssl_reply, Tag, _} -> ok
                    after 5000 -> ok
                    end;
                {error, _} ->
                    %% The handshake had ended already (the peer left).
                    ok
            end,
            rssl_nif:close(Socket),
            ok;
        undefined ->
            {error, einval}
    end.

%% Waits for the handshake, with its deadline. The funs it calls back
%% (sni_fun, verify_fun...) run one after the other in a process of this
%% handshake (`Runner', started at the first one), as OTP runs them in the
%% connection process: the handshake is paused meanwhile (no thread waits),
%% and a fun that never returns cannot hold this caller past its deadline.
await_handshake(Socket, Tag, Deadline, Runner, Tls) ->
    receive
        {rssl_reply, Tag, ok} ->
            stop_runner(Runner),
            {ok, Socket};
        {rssl_reply, Tag, {error, Reason} = Error} ->
            stop_runner(Runner),
            rssl_nif:close(Socket),
            rssl_logger:handshake_failed(Tls, Reason),
            Error;
        {rssl_callback, Tag, Call, {hello, Hello, _}} ->
            %% {handshake, hello}: the handshake stays paused until
            %% continue/3 or cancel/1 answers.
            stop_runner(Runner),
            ok = rssl_nif:park_hello(Socket, {Call, Tls}),
            {ok, Socket, rssl_hello:extensions(Hello, Tls)};
        {rssl_callback, Tag, Call, Request} ->
            Runner1 = case Runner of
                          undefined -> start_runner(Socket);
                          _ -> Runner
                      end,
            Runner1 ! {rssl_callback, Call, Request},
            await_handshake(Socket, Tag, Deadline, Runner1, Tls)
    after remaining(Deadline) ->
        stop_runner(Runner),
        rssl_nif:close(Socket),
        receive {rssl_reply, Tag, _} -> ok after 0 -> ok end,
        {error, timeout}
    end.

%% Runs the handshake's funs in order and answers the NIF, which resumes
%% the handshake. `CbState' is what the funs keep for the handshake (the
%% verify fun's user state). Linked: it dies with the caller, even inside
%% a fun that never returns.
start_runner(Socket) ->
    Caller = self(),
    spawn_link(fun() ->
                       Ref = erlang:monitor(process, Caller),
                       run_callbacks(Socket, Ref, #{})
               end).

run_callbacks(Socket, Ref, CbState) ->
    receive
        {rssl_callback, Call, Request} ->
            {Answer, CbState1} = try callback(Request, CbState)
                                 catch _:_ -> {refusal(Request), CbState}
                                 end,
            rssl_nif:callback_reply(Socket, Call, Answer),
            run_callbacks(Socket, Ref, CbState1);
        {'DOWN', Ref, process, _, _} ->
            ok
    end.

%% The answer that fails safe when running a request went wrong.
refusal({verify, _, _}) -> {fail, 50};  % X509_V_ERR_APPLICATION_VERIFICATION
refusal(_) -> reject.

%% Unlinked first, so that a caller trapping exits gets no message.
stop_runner(undefined) -> ok;
stop_runner(Runner) ->
    unlink(Runner),
    exit(Runner, kill).

%% verify_fun: OpenSSL's checks become OTP's events (rssl_verify), with
%% the fun's state kept for the handshake.
callback({verify, Check, Context}, CbState) ->
    {Answer, State} = rssl_verify:verify(Check, Context, maps:get(verify, CbState, undefined)),
    {Answer, CbState#{verify => State}};
callback(Request, CbState) ->
    {callback(Request), CbState}.

%% CRLs at a certificate's distribution points ({http, Timeout}).
callback({crl_fetch, Urls, Timeout}) ->
    {crls, rssl_crl_cache:fetch([binary_to_list(U) || U <- Urls], Timeout)};
%% partial_chain: {trusted, Index} | unknown_ca.
callback({partial_chain, Chain, Fun}) ->
    rssl_verify:partial_chain(Chain, Fun);
%% user_lookup_fun: {psk, Key} | {srp, Bits, Salt, DerivedKey} | error. As
%% OTP's ssl, the identity, hint or user name is a binary (hint: undefined
%% when the server sent none).
callback({user_lookup, {psk, Identity}, {Fun, UserState}}) ->
    case catch Fun(psk, Identity, UserState) of
        {ok, Key} when is_binary(Key) -> {psk, Key};
        _ -> error
    end;
callback({user_lookup, {srp, User}, {Fun, UserState}}) ->
    case catch Fun(srp, User, UserState) of
        {ok, {Params, Salt, DerivedKey}} when is_binary(Salt), is_binary(DerivedKey) ->
            case srp_bits(Params) of
                undefined -> error;
                Bits -> {srp, Bits, Salt, DerivedKey}
            end;
        _ -> error
    end;
%% reuse_session(SessionId, PeerCert, Compression, CipherSuite): only
%% `true' resumes.
callback({reuse_session, {Id, PeerCert, Suite}, Fun}) ->
    (catch Fun(Id, PeerCert, 0, Suite)) =:= true;
%% sni_fun(Host) returns options for that host ([] or undefined: the
%% listener's own); anything unusable rejects the host.
callback({sni, Host, {Fun, Base}}) ->
    case catch Fun(binary_to_list(Host)) of
        Options when is_list(Options), Options =/= [] ->
            case rssl_options:sni_options(Options, Base) of
                {ok, Tls} ->
                    case config(server, Tls) of
                        {ok, Config} -> {config, Config};
                        _ -> reject
                    end;
                _ -> reject
            end;
        Empty when Empty =:= []; Empty =:= undefined -> default;
        _ -> reject
    end.

srp_bits(srp_1024) -> 1024;
srp_bits(srp_1536) -> 1536;
srp_bits(srp_2048) -> 2048;
srp_bits(srp_3072) -> 3072;
srp_bits(srp_4096) -> 4096;
srp_bits(srp_6144) -> 6144;
srp_bits(srp_8192) -> 8192;
srp_bits(_) -> undefined.

-spec deadline(timeout()) -> deadline().
deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

-spec remaining(deadline()) -> timeout().
remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
