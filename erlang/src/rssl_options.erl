%% @doc Option lists as `ssl' takes them, validated and split into the
%% parts rssl needs: gen_tcp options, emulated socket options, and the TLS
%% configuration map the NIF builds a configuration from.
-module(rssl_options).

-export([split/2, tls_map/2, emulated/1, emulated_defaults/0, peer/3, hostname_check/2,
         is_emulated/1, classify/1, inet_emulated/1, sni_options/2, override/2]).

-type role() :: client | server.
-type parts() :: #{tcp := [term()], emulated := [{atom(), term()}],
                   tls := map(), sni := undefined | disable | string()}.
-export_type([parts/0]).

-define(EMULATED, [mode, active, packet, packet_size, header]).

%% inet options inet keeps in user space: given to gen_tcp at creation and
%% kept by the NIF afterwards (the gen_tcp port is gone once adopted).
-define(INET_EMULATED, [exit_on_close, send_timeout, send_timeout_close,
                        delay_send, show_econnreset, buffer, high_watermark,
                        low_watermark]).

%% inet options that are kernel socket options, set on the adopted fd.
-define(SOCKOPT, [nodelay, keepalive, sndbuf, recbuf, reuseaddr, tos, tclass,
                  priority, linger, ipv6_v6only]).

%% inet/gen_tcp options passed to gen_tcp as they are (gen_tcp validates them).
-define(INET, [nodelay, keepalive, sndbuf, recbuf, buffer, send_timeout,
               send_timeout_close, linger, reuseaddr, reuseport, backlog, ip,
               ifaddr, port, fd, inet, inet6, ipv6_v6only, tos, tclass,
               priority, delay_send, high_watermark, low_watermark,
               high_msgq_watermark, low_msgq_watermark, dontroute,
               bind_to_device, netns, raw, exit_on_close, show_econnreset,
               deliver, tcp_module, recvtos, recvtclass, recvttl]).

%% OTP 25's elliptic curves for TLS 1.2 (tls_v1:ecc_curves(all)).
-define(ECCS, [sect571r1, sect571k1, secp521r1, brainpoolP512r1, sect409k1, sect409r1,
               brainpoolP384r1, secp384r1, sect283k1, sect283r1, brainpoolP256r1, secp256k1,
               secp256r1, sect239k1, sect233k1, sect233r1, secp224k1, secp224r1, sect193r1,
               sect193r2, secp192k1, secp192r1, sect163k1, sect163r1, sect163r2, secp160k1,
               secp160r1, secp160r2]).

%% Options accepted for compatibility that have nothing to act on in rssl
%% (logging and process tuning of OTP's ssl connection processes).
-define(NO_EFFECT, [max_handshake_size, middlebox_comp_mode,
                    receiver_spawn_opts, sender_spawn_opts, erl_dist,
                    protocol]).

%% Session ids belong to TLS 1.2 and older: as OTP's ssl, a version of
%% those is needed.
check_sessions(Tls) ->
    Versions = maps:get(versions, Tls, ['tlsv1.3', 'tlsv1.2']),
    Tls12 = lists:any(fun(V) -> V =/= 'tlsv1.3' end, Versions),
    [throw({options, dependency, {Key, {versions, [tlsv1, 'tlsv1.1', 'tlsv1.2']}}})
     || {Key, Mark} <- [{reuse_sessions, save_session}, {reuse_session, offer_session}],
        maps:is_key(Mark, Tls), not Tls12],
    %% And options of TLS 1.3 only need it.
    case maps:take(tls13_option, Tls) of
        {Key, Tls1} ->
            lists:member('tlsv1.3', Versions)
                orelse throw({options, dependency, {Key, {versions, ['tlsv1.3']}}}),
            Tls1;
        error ->
            Tls
    end.

%% TLS 1.3 tickets and 0-RTT, with OTP 25's dependency rules and errors:
%% session_tickets, use_ticket, early_data and anti_replay need TLS 1.3;
%% a client's early data needs tickets (manual ones given with
%% use_ticket), a server's stateful or stateless tickets; anti_replay
%% needs stateless tickets. use_ticket needs manual tickets (OTP 25's ssl
%% crashes without them). A server's early_data becomes the most early
%% data it accepts, anti_replay OTP's Bloom filter triple.
check_tickets(Role, Tls0) ->
    Versions = maps:get(versions, Tls0, ['tlsv1.3', 'tlsv1.2']),
    Tickets = maps:get(session_tickets, Tls0, disabled),
    Needs = fun(Key, Allowed) ->
                    maps:is_key(Key, Tls0) andalso not lists:member('tlsv1.3', Versions)
                        andalso throw({options, dependency, {Key, {versions, ['tlsv1.3']}}}),
                    maps:is_key(Key, Tls0) andalso Allowed =/= any
                        andalso not lists:member(Tickets, Allowed)
                        andalso throw({options, dependency, {Key, {session_tickets, Allowed}}})
            end,
    %% (OTP 25 reports use_ticket's missing version before session_tickets'.)
    Needs(use_ticket, any),
    Needs(session_tickets, any),
    UseTicket = case Role of
                    client -> [manual];
                    server -> any
                end,
    Needs(use_ticket, UseTicket),
    Needs(anti_replay, [stateless]),
    Tls1 = case Tls0 of
               #{anti_replay := AR} -> Tls0#{anti_replay := anti_replay(AR)};
               _ -> Tls0
           end,
    Tls2 = case Role of
               server -> maps:remove(use_ticket, Tls1);
               client -> Tls1
           end,
    case {Role, Tls2} of
        {_, #{early_data := _}} when Role =:= server ->
            Needs(early_data, [stateful, stateless]),
            case maps:get(early_data, Tls2) of
                enabled -> Tls2#{early_data := max_early_data()};
                disabled -> maps:remove(early_data, Tls2);
                V -> throw({options, role, {early_data, {V, {server, [disabled, enabled]}}}})
            end;
        {client, #{early_data := V}} ->
            Needs(early_data, [manual, auto]),
            Tickets =:= manual andalso not maps:is_key(use_ticket, Tls2)
                andalso throw({options, dependency, {early_data, use_ticket}}),
            is_binary(V) orelse throw({options, type, {early_data, {V, not_binary}}}),
            Tls2;
        _ ->
            Tls2
    end.

anti_replay('10k') -> {10, 5, 72985};
anti_replay('100k') -> {10, 5, 729845};
anti_replay({Window, Hashes, Bits} = V)
  when is_integer(Window), Window > 0, Window < 1 bsl 32, is_integer(Hashes), Hashes > 0,
       Hashes =< 32, is_integer(Bits), Bits > 0, Bits < 1 bsl 32 ->
    V;
anti_replay(V) ->
    throw({options, {anti_replay, V}}).

%% The most early data a server accepts: OTP's ssl application variable
%% server_session_ticket_max_early_data, rssl's of the same name.
max_early_data() ->
    case application:get_env(rssl, server_session_ticket_max_early_data) of
        {ok, Size} when is_integer(Size), Size > 0, Size < 1 bsl 32 -> Size;
        _ -> 16384
    end.

%% @doc Validates `Options' for `Role' and splits them.
-spec split(role(), list()) -> {ok, parts()} | {error, term()}.
split(Role, Options) when is_list(Options) ->
    try
        {ok, split(Role, Options, #{tcp => [], emulated => [], tls => #{},
                                   sni => undefined,
                                   transport => {gen_tcp, {tcp, tcp_closed, tcp_error}}})}
    catch
        throw:{options, _} = Reason -> {error, Reason};
        throw:{options, dependency, _} = Reason -> {error, Reason};
        throw:{options, role, _} = Reason -> {error, Reason};
        throw:{options, type, _} = Reason -> {error, Reason};
        throw:{options, no_supported_signature_schemes, _} = Reason -> {error, Reason}
    end;
split(_Role, Options) ->
    {error, {options, {not_a_list, Options}}}.

split(Role, [], Acc = #{tcp := Tcp, emulated := Emu, tls := Tls}) ->
    Acc#{tcp := lists:reverse(Tcp), emulated := lists:reverse(Emu),
         tls := check_combinations(Role, check_tickets(Role, check_sessions(Tls)))};
split(Role, [binary | Rest], Acc) ->
    split(Role, [{mode, binary} | Rest], Acc);
split(Role, [list | Rest], Acc) ->
    split(Role, [{mode, list} | Rest], Acc);
split(Role, [Inet | Rest], Acc = #{tcp := Tcp}) when Inet =:= inet; Inet =:= inet6 ->
    split(Role, Rest, Acc#{tcp := [Inet | Tcp]});
split(Role, [{_Key, _Value} = Opt | Rest], Acc) ->
    split(Role, Rest, option(Role, Opt, Acc));
split(_Role, [Other | _], _Acc) ->
    throw({options, {option_not_a_key_value_tuple, Other}});
split(_Role, Tail, _Acc) ->
    throw({options, {not_a_list, Tail}}).

%% One {Key, Value} option added to the parts. A value none of the clauses
%% below foresaw (an improper list, a wrong type deep inside) makes them
%% raise; it is refused as that option, like any other bad value.
option(Role, {Key, Value} = Opt, Acc = #{tcp := Tcp, emulated := Emu, tls := Tls}) ->
    try
        case where(Key) of
            emulated ->
                Acc#{emulated := [emulated(Opt) | Emu]};
            inet_emulated ->
                %% gen_tcp validates and applies it too, until the port is adopted.
                Acc#{tcp := [Opt | Tcp], emulated := [inet_emulated(Opt) | Emu]};
            inet ->
                Acc#{tcp := [socket_option(Opt) | Tcp]};
            sni ->
                Acc#{sni := sni(Role, Value)};
            transport ->
                Acc#{transport := cb_info(Opt)};
            tls ->
                Acc#{tls := tls(Role, Opt, Tls)}
        end
    catch
        error:_ -> throw({options, Opt})
    end.

%% gen_tcp:listen raises for a backlog that is not an integer, after it
%% opened its port, which then stays open: refuse it before.
socket_option({backlog, B} = Opt) when not is_integer(B) -> throw({options, Opt});
socket_option(Opt) -> Opt.

where(Key) ->
    case {is_emulated(Key), lists:member(Key, ?INET_EMULATED), lists:member(Key, ?INET)} of
        {true, _, _} -> emulated;
        {_, true, _} -> inet_emulated;
        {_, _, true} -> inet;
        _ when Key =:= server_name_indication -> sni;
        _ when Key =:= cb_info -> transport;
        _ -> tls
    end.

%% @doc Where a socket option goes after the connection exists:
%% `emulated' (the NIF keeps it), `sockopt' (the kernel socket) or `bad'.
-spec classify(term()) -> emulated | sockopt | bad.
classify({Key, _}) ->
    case is_emulated(Key) orelse lists:member(Key, ?INET_EMULATED) of
        true -> emulated;
        false ->
            case lists:member(Key, ?SOCKOPT) of
                true -> sockopt;
                false -> bad
            end
    end;
classify(binary) -> emulated;
classify(list) -> emulated;
classify(_) -> bad.

%% `{cb_info, {Module, DataTag, ClosedTag, ErrorTag}}' (a fifth element,
%% the passive tag of newer OTP releases, is accepted and not needed).
cb_info({cb_info, {M, D, C, E}}) when is_atom(M), is_atom(D), is_atom(C), is_atom(E) ->
    {M, {D, C, E}};
cb_info({cb_info, {M, D, C, E, P}}) when is_atom(P) ->
    cb_info({cb_info, {M, D, C, E}});
cb_info(Opt) ->
    throw({options, Opt}).

%% @doc Validates one inet-emulated option.
-spec inet_emulated({atom(), term()}) -> {atom(), term()}.
inet_emulated({send_timeout, T} = O) when T =:= infinity; is_integer(T), T >= 0 -> O;
inet_emulated({Key, B} = O) when is_boolean(B), Key =/= send_timeout,
                                 Key =/= buffer, Key =/= high_watermark,
                                 Key =/= low_watermark -> O;
inet_emulated({Key, N} = O) when is_integer(N), N >= 0,
                                 (Key =:= buffer orelse Key =:= high_watermark
                                  orelse Key =:= low_watermark) -> O;
inet_emulated(Opt) -> throw({options, {socket_options, Opt}}).

-spec is_emulated(term()) -> boolean().
is_emulated(Key) -> lists:member(Key, ?EMULATED).

%% @doc Validates one emulated socket option.
-spec emulated(term()) -> {atom(), term()}.
emulated({mode, M} = O) when M =:= list; M =:= binary -> O;
emulated({active, A} = O) when is_boolean(A); A =:= once -> O;
emulated({active, N} = O) when is_integer(N), N >= -32768, N =< 32767 -> O;
emulated({packet, P} = O) when P =:= raw; P =:= 0 -> O;
emulated({packet, P} = O) when P =:= 1; P =:= 2; P =:= 4; P =:= line; P =:= asn1;
                               P =:= cdr; P =:= sunrm; P =:= fcgi; P =:= tpkt -> O;
emulated({packet, P} = O) when P =:= http; P =:= http_bin; P =:= httph; P =:= httph_bin -> O;
emulated({packet_size, N} = O) when is_integer(N), N >= 0 -> O;
emulated({header, N} = O) when is_integer(N), N >= 0 -> O;
emulated(Opt) -> throw({options, Opt}).

%% The defaults of the ssl reference manual.
-spec emulated_defaults() -> [{atom(), term()}].
emulated_defaults() ->
    [{mode, list}, {packet, 0}, {header, 0}, {active, true}].

sni(client, disable) -> disable;
sni(client, Host) when is_atom(Host) -> atom_to_list(Host);
sni(client, Host) when is_list(Host) ->
    case io_lib:printable_unicode_list(Host) andalso Host =/= [] of
        true -> Host;
        false -> throw({options, {server_name_indication, Host}})
    end;
sni(client, Host) when is_binary(Host) -> sni(client, binary_to_list(Host));
sni(server, Value) -> throw({options, {server_name_indication, Value}});
sni(_, Value) -> throw({options, {server_name_indication, Value}}).

%% --- TLS options -------------------------------------------------------

tls(_Role, {verify, V}, Tls) when V =:= verify_peer; V =:= verify_none ->
    Tls#{verify => V};
tls(_Role, {fail_if_no_peer_cert, B}, Tls) when is_boolean(B) ->
    Tls#{fail_if_no_peer_cert => B};
tls(_Role, {depth, D}, Tls) when is_integer(D), D >= 0, D =< 255 ->
    Tls#{depth => D};
tls(_Role, {certfile, Path}, Tls) ->
    Tls#{certfile => path(certfile, Path)};
tls(_Role, {keyfile, Path}, Tls) ->
    Tls#{keyfile => path(keyfile, Path)};
tls(_Role, {cacertfile, Path}, Tls) ->
    case path(cacertfile, Path) of
        <<>> -> Tls;
        P -> Tls#{cacertfile => P}
    end;
tls(_Role, {cert, Der}, Tls) when is_binary(Der) ->
    Tls#{cert => [Der]};
tls(_Role, {cert, [_ | _] = Ders} = Opt, Tls) ->
    lists:all(fun is_binary/1, Ders) orelse throw({options, Opt}),
    Tls#{cert => Ders};
tls(_Role, {key, {Type, Der}} = Opt, Tls) when is_binary(Der) ->
    lists:member(Type, ['RSAPrivateKey', 'DSAPrivateKey', 'ECPrivateKey',
                        'PrivateKeyInfo'])
        orelse throw({options, Opt}),
    Tls#{key => {Type, Der}};
%% Several identities (OTP 25's certs_keys): each map is read as the
%% single cert/key options are (cert before certfile, key before keyfile,
%% the key defaulting to the certificate's PEM). With certs_keys the
%% single options are not used, as in OTP.
tls(_Role, {certs_keys, Entries} = Opt, Tls) when is_list(Entries) ->
    Tls#{certs_keys => [cert_key(Entry, Opt) || Entry <- Entries]};
tls(_Role, {password, P} = Opt, Tls) ->
    case unicode:characters_to_binary(P) of
        Bin when is_binary(Bin) -> Tls#{password => Bin};
        _ -> throw({options, Opt})
    end;
tls(_Role, {cacerts, Certs} = Opt, Tls) when is_list(Certs) ->
    %% DER binaries, or what public_key:cacerts_get/0 gives (#cert{der, otp}).
    Ders = [case C of
                Der when is_binary(Der) -> Der;
                {cert, Der, _Otp} when is_binary(Der) -> Der;
                _ -> throw({options, Opt})
            end || C <- Certs],
    Tls#{cacerts => Ders};
%% As in OTP, a wildcard certificate matches only with the https match fun
%% (what Mint, hackney and others pass); OpenSSL then matches a wildcard in
%% the leftmost label as that fun does. Any other customization (a
%% match_fun, fqdn_fun, fail_callback of public_key:pkix_verify_hostname/3)
%% makes the check OTP's own, in Erlang: see hostname_check/2. A server
%% checks no host name: as OTP's, it accepts the option and ignores it.
tls(Role, {customize_hostname_check, Custom} = Opt, Tls) when is_list(Custom) ->
    Https = public_key:pkix_verify_hostname_match_fun(https),
    lists:foreach(fun({match_fun, F}) when is_function(F, 2) -> ok;
                     ({fqdn_fun, F}) when is_function(F, 1) -> ok;
                     ({fail_callback, F}) when is_function(F, 1) -> ok;
                     (_) -> throw({options, Opt})
                  end, Custom),
    case Custom of
        _ when Role =:= server -> Tls;
        [] -> maps:remove(hostname_check, Tls);
        [{match_fun, F}] when F =:= Https ->
            maps:remove(hostname_check, Tls#{hostname_wildcards => true});
        _ -> Tls#{hostname_check => Custom}
    end;
tls(_Role, {versions, Versions} = Opt, Tls) when is_list(Versions), Versions =/= [] ->
    lists:foreach(
      fun(V) when V =:= 'tlsv1.3'; V =:= 'tlsv1.2'; V =:= 'tlsv1.1'; V =:= tlsv1 -> ok;
         (V) -> throw({options, {V, Opt}})
      end, Versions),
    Tls#{versions => Versions};
tls(_Role, {ciphers, Ciphers} = Opt, Tls) ->
    {List12, List13} = rssl_ciphers:to_openssl(Ciphers, Opt),
    maps:merge(Tls, maps:from_list([{ciphers, List12} || List12 =/= undefined] ++
                                   [{ciphersuites, List13} || List13 =/= undefined]));
tls(_Role, {honor_cipher_order, B}, Tls) when is_boolean(B) ->
    Tls#{honor_cipher_order => B};
tls(_Role, {reuse_sessions, B}, Tls) when is_boolean(B) ->
    maps:remove(save_session, Tls#{reuse_sessions => B});
%% A client's TLS 1.2 session by hand: `save' makes a new one (no saved
%% session offered) and keeps it by its id for `{reuse_session, Id}';
%% `{reuse_session, {Id, Data}}' offers the session connection_information's
%% `session_data' gave. See rssl:client_handshake/8.
tls(client, {reuse_sessions, save}, Tls) ->
    Tls#{reuse_sessions => true, save_session => true};
tls(client, {reuse_session, Id}, Tls) when is_binary(Id) ->
    Tls#{offer_session => {id, Id}};
tls(client, {reuse_session, {Id, Data}}, Tls) when is_binary(Id), is_binary(Data) ->
    Tls#{offer_session => {data, Data}};
tls(_Role, {secure_renegotiate, B}, Tls) when is_boolean(B) ->
    Tls#{secure_renegotiate => B};
tls(server, {client_renegotiation, B}, Tls) when is_boolean(B) ->
    Tls#{client_renegotiation => B};
tls(client, {alpn_advertised_protocols, Ps} = Opt, Tls) ->
    Tls#{alpn => protocols(Ps, Opt)};
tls(server, {alpn_preferred_protocols, Ps} = Opt, Tls) ->
    Tls#{alpn => protocols(Ps, Opt)};
tls(_Role, {dh, Der}, Tls) when is_binary(Der) ->
    Tls#{dh => Der};
tls(server, {dhfile, Path}, Tls) ->
    Tls#{dhfile => path(dhfile, Path)};
tls(client, {fallback, B}, Tls) when is_boolean(B) ->
    Tls#{fallback => B};
tls(_Role, {signature_algs, Algs} = Opt, Tls) when is_list(Algs), Algs =/= [] ->
    Names = [sigalg_name(A, Opt) || A <- Algs],
    Tls#{signature_algs => iolist_to_binary(lists:join(":", Names))};
tls(_Role, {supported_groups, Groups} = Opt, Tls) when is_list(Groups) ->
    %% As OTP's ssl: what it does not know is left out. With nothing left
    %% no handshake could succeed, so that is an options error here.
    case [Name || G <- Groups, Name <- [group_name(G)], Name =/= unknown] of
        [] -> throw({options, Opt});
        Names -> Tls#{supported_groups => iolist_to_binary(lists:join(":", Names))}
    end;
%% signature_algorithms_cert: OpenSSL 3.0 neither sends this extension
%% nor lets a list be set for it, so the option is checked as OTP checks
%% it and changes nothing (README).
tls(_Role, {signature_algs_cert, []} = Opt, _Tls) ->
    throw({options, no_supported_signature_schemes, Opt});
tls(_Role, {signature_algs_cert, Algs} = Opt, Tls) when is_list(Algs) ->
    _ = [sigalg_name(A, Opt) || A <- Algs],
    Tls;
%% OTP's curves for TLS 1.2 (ECDHE and ECDSA certificates), apart from the
%% TLS 1.3 groups of supported_groups: names OTP does not know are left
%% out, as OTP does. Where they apply: engine/identity.rs.
tls(_Role, {eccs, Curves} = Opt, Tls) when is_list(Curves) ->
    case [atom_to_list(C) || C <- Curves, lists:member(C, ?ECCS)] of
        [] -> throw({options, Opt});
        Names -> Tls#{eccs => iolist_to_binary(lists:join(":", Names))}
    end;
%% TLS 1.0 record options: nothing to act on (OpenSSL does both), but as
%% in OTP's ssl they need tlsv1 among the versions.
tls(_Role, {Key, _} = Opt, Tls) when Key =:= padding_check; Key =:= beast_mitigation ->
    Tls#{tlsv1_only => [Opt | maps:get(tlsv1_only, Tls, [])]};
%% Alerts ending a handshake are logged as OTP logs them (rssl_logger).
tls(_Role, {log_level, Level} = Opt, Tls) ->
    rssl_logger:valid_level(Level) orelse throw({options, Opt}),
    Tls#{log_level => Level};
%% RFC 6066's extension, asked by a client. A server grants what a client
%% asks whatever its own value, as OTP's does.
tls(Role, {max_fragment_length, N}, Tls) when N =:= 512; N =:= 1024; N =:= 2048; N =:= 4096 ->
    case Role of
        client -> Tls#{max_fragment_length => N};
        server -> Tls
    end;
tls(_Role, {max_fragment_length, undefined}, Tls) ->
    maps:remove(max_fragment_length, Tls);
%% Whether a server names its CAs in TLS 1.3 certificate requests (a
%% client's value changes nothing, as in OTP 25). Needs TLS 1.3 (see
%% check_sessions/1).
tls(Role, {certificate_authorities, B}, Tls) when is_boolean(B) ->
    case Role of
        server -> Tls#{certificate_authorities => B, tls13_option => certificate_authorities};
        client -> Tls#{tls13_option => certificate_authorities}
    end;
%% New keys after so much traffic (engine/rekey.rs): a TLS 1.3 key update
%% after key_update_at bytes sent, a TLS 1.2 renegotiation after
%% renegotiate_at records (at most OTP's 268435456).
tls(_Role, {key_update_at, N}, Tls) when is_integer(N), N > 0 ->
    Tls#{key_update_at => N, tls13_option => key_update_at};
tls(_Role, {renegotiate_at, N}, Tls) when is_integer(N) ->
    Tls#{renegotiate_at => max(0, min(N, 268435456))};
%% The TLS 1.3 traffic secrets kept for connection_information/2.
tls(_Role, {keep_secrets, B}, Tls) when is_boolean(B) ->
    Tls#{keep_secrets => B};
tls(_Role, {log_alert, B}, Tls) when is_boolean(B) ->
    Tls#{log_alert => B};
%% A full handshake is what rssl always does (OTP's default).
tls(_Role, {handshake, full}, Tls) ->
    maps:remove(handshake, Tls);
%% Stop after the peer's hello (handshake_continue/3, handshake_cancel/1).
tls(_Role, {handshake, hello}, Tls) ->
    Tls#{handshake => hello};
%% There is no connection process to hibernate; the value is still checked.
tls(_Role, {hibernate_after, T}, Tls) when T =:= undefined; T =:= infinity;
                                          is_integer(T), T >= 0 ->
    Tls;
tls(_Role, {hibernate_after, T}, _Tls) ->
    throw({options, {hibernate_after, T}});
tls(_Role, {verify_fun, undefined}, Tls) ->
    maps:remove(verify_fun, Tls);
tls(_Role, {verify_fun, {Fun, _} = V}, Tls) when is_function(Fun, 3); is_function(Fun, 4) ->
    Tls#{verify_fun => V};
tls(_Role, {verify_fun, Fun}, Tls) when is_function(Fun, 1) ->
    %% The old form, wrapped as OTP's ssl wraps it.
    Tls#{verify_fun => {fun(_, {bad_cert, _} = Reason, Old) ->
                                case Old([Reason]) of
                                    true -> {valid, Old};
                                    false -> {fail, Reason}
                                end;
                           (_, {extension, _}, UserState) -> {unknown, UserState};
                           (_, Valid, UserState) when Valid =:= valid; Valid =:= valid_peer ->
                                {valid, UserState}
                        end, Fun}};
tls(_Role, {partial_chain, Fun}, Tls) when is_function(Fun, 1) ->
    Tls#{partial_chain => Fun};
tls(_Role, {crl_check, C}, Tls) when is_boolean(C); C =:= peer; C =:= best_effort ->
    Tls#{crl_check => C};
%% The internal cache holds what rssl_crl_cache:insert/1,2 put there
%% (ssl_crl_cache is accepted as the same cache); with {http, Timeout} a
%% certificate's CRL missing there is fetched from its distribution points
%% (rssl_crl_cache:fetch/2). ssl_crl_hash_dir reads a directory laid out
%% by `openssl rehash' instead.
tls(_Role, {crl_cache, {Cache, {internal, Args}}} = Opt, Tls)
  when (Cache =:= ssl_crl_cache orelse Cache =:= rssl_crl_cache), is_list(Args) ->
    Base = maps:without([crl_http, crl_dir], Tls),
    case proplists:get_value(http, Args) of
        undefined -> Base;
        T when T =:= infinity; is_integer(T), T >= 0 -> Base#{crl_http => T};
        _ -> throw({options, Opt})
    end;
tls(_Role, {crl_cache, {ssl_crl_hash_dir, {internal, Args}}} = Opt, Tls) when is_list(Args) ->
    case proplists:get_value(dir, Args) of
        undefined -> throw({options, Opt});
        Dir -> (maps:remove(crl_http, Tls))#{crl_dir => path(crl_cache, Dir)}
    end;
tls(_Role, {user_lookup_fun, {Fun, _} = V}, Tls) when is_function(Fun, 3) ->
    Tls#{user_lookup_fun => V};
tls(_Role, {psk_identity, Id} = Opt, Tls) when is_list(Id); is_binary(Id) ->
    case unicode:characters_to_binary(Id) of
        Bin when is_binary(Bin), byte_size(Bin) > 0, byte_size(Bin) < 65536 ->
            Tls#{psk_identity => Bin};
        _ ->
            throw({options, Opt})
    end;
tls(client, {srp_identity, {User, Password}} = Opt, Tls) when is_list(User), is_list(Password) ->
    case {unicode:characters_to_binary(User), unicode:characters_to_binary(Password)} of
        {U, P} when is_binary(U), is_binary(P), byte_size(U) > 0, byte_size(U) < 256 ->
            Tls#{srp_identity => {U, P}};
        _ ->
            throw({options, Opt})
    end;
tls(client, {session_tickets, T}, Tls) when T =:= disabled; T =:= auto; T =:= manual ->
    Tls#{session_tickets => T};
tls(server, {session_tickets, T}, Tls) when T =:= disabled; T =:= stateful; T =:= stateless ->
    Tls#{session_tickets => T};
tls(client, {session_tickets, T}, _Tls) ->
    throw({options, role, {session_tickets, {T, {client, [disabled, manual, auto]}}}});
tls(server, {session_tickets, T}, _Tls) ->
    throw({options, role, {session_tickets, {T, {server, [disabled, stateful, stateless]}}}});
%% Tickets by hand and 0-RTT: checked with what they depend on, in OTP's
%% order, once all options are in (check_tickets/2).
tls(_Role, {use_ticket, Tickets}, Tls) when is_list(Tickets) ->
    _ = length(Tickets),  % a proper list (an improper one is refused)
    Tls#{use_ticket => Tickets};
tls(_Role, {early_data, Value}, Tls) ->
    Tls#{early_data => Value};
tls(_Role, {anti_replay, Value}, Tls) ->
    Tls#{anti_replay => Value};
tls(server, {reuse_session, Fun}, Tls) when is_function(Fun, 4) ->
    Tls#{reuse_session => Fun};
tls(server, {next_protocols_advertised, Ps} = Opt, Tls) ->
    Tls#{next_protocols_advertised => protocols(Ps, Opt)};
tls(client, {client_preferred_next_protocols, {Precedence, Ps}}, Tls) ->
    tls(client, {client_preferred_next_protocols, {Precedence, Ps, undefined}}, Tls);
tls(client, {client_preferred_next_protocols, {Precedence, Ps, Default}} = Opt, Tls)
  when (Precedence =:= client orelse Precedence =:= server), Ps =/= [],
       (Default =:= undefined orelse (is_binary(Default) andalso byte_size(Default) > 0
                                      andalso byte_size(Default) < 256)) ->
    Tls#{client_preferred_next_protocols => {Precedence, protocols(Ps, Opt), Default}};
tls(server, {sni_fun, Fun}, Tls) when is_function(Fun, 1) ->
    Tls#{sni_fun => Fun};
tls(server, {sni_hosts, Hosts} = Opt, Tls) when is_list(Hosts) ->
    Parsed = [case Entry of
                  {Host, HostOpts} when is_list(HostOpts) ->
                      Name = sni(client, Host),
                      #{tls := HostTls} = split(server, HostOpts,
                                                #{tcp => [], emulated => [], tls => #{},
                                                  sni => undefined}),
                      {Name, HostTls};
                  _ ->
                      throw({options, Opt})
              end || Entry <- Hosts],
    Tls#{sni_hosts => Parsed};
tls(_Role, {Key, _} = Opt, Tls) ->
    case lists:member(Key, ?NO_EFFECT) of
        true -> Tls;
        false -> throw({options, unsupported_or_bad(Opt)})
    end.

%% Options OTP knows that rssl does not implement yet are reported as such
%% (see README), never silently ignored.
unsupported_or_bad({Key, _} = Opt) ->
    %% crl_cache: other cache modules; reuse_session: a client's saved
    %% session.
    Known = [crl_cache, reuse_session, ocsp_stapling, ocsp_responder_certs,
             ocsp_nonce, cookie, stateless_tickets_seed],
    case lists:member(Key, Known) of
        true -> {not_supported, Opt};
        false -> Opt
    end.

cert_key(Entry, Opt) when is_map(Entry) ->
    Known = [cert, key, certfile, keyfile, password],
    maps:size(maps:without(Known, Entry)) =:= 0 orelse throw({options, Opt}),
    Parts = maps:fold(fun(K, V, Acc) -> tls(server, {K, V}, Acc) end, #{}, Entry),
    %% cert overrides certfile and key keyfile, as in the single options.
    Cert = case Parts of
               #{cert := Ders} -> #{cert => Ders};
               #{certfile := File} -> #{certfile => File};
               _ -> throw({options, Opt})
           end,
    Key = case Parts of
              #{key := K} -> #{key => K};
              #{keyfile := KeyFile} -> #{keyfile => KeyFile};
              _ -> #{}
          end,
    maps:merge(maps:merge(Cert, Key), maps:with([password], Parts));
cert_key(_Entry, Opt) ->
    throw({options, Opt}).

path(Option, Path) when is_binary(Path) -> path(Option, binary_to_list(Path));
path(Option, Path) when is_list(Path) ->
    try unicode:characters_to_binary(Path) of
        Bin when is_binary(Bin) -> Bin;
        _ -> throw({options, {Option, Path}})
    catch
        _:_ -> throw({options, {Option, Path}})
    end;
path(Option, Path) -> throw({options, {Option, Path}}).

protocols(Ps, {Key, _} = Opt) when is_list(Ps) ->
    lists:foreach(fun(P) when is_binary(P), byte_size(P) > 0, byte_size(P) < 256 -> ok;
                     (P) when is_binary(P) -> throw({options, {Key, {invalid_protocol, P}}});
                     (_) -> throw({options, Opt})
                  end, Ps),
    Ps;
protocols(_, Opt) -> throw({options, Opt}).

%% OTP's signature algorithm names in OpenSSL's list syntax: TLS 1.2
%% {Hash, Sign} pairs, and TLS 1.3 schemes (the same names but EdDSA's).
sigalg_name({Hash, Sign} = Alg, Opt) ->
    H = case Hash of
            sha512 -> "SHA512"; sha384 -> "SHA384"; sha256 -> "SHA256";
            sha224 -> "SHA224"; sha -> "SHA1"; md5 -> "MD5";
            _ -> throw({options, {Alg, Opt}})
        end,
    S = case Sign of
            rsa -> "RSA"; ecdsa -> "ECDSA"; dsa -> "DSA";
            _ -> throw({options, {Alg, Opt}})
        end,
    [S, "+", H];
sigalg_name(eddsa_ed25519, _) -> "ed25519";
sigalg_name(eddsa_ed448, _) -> "ed448";
sigalg_name(Scheme, Opt) ->
    Schemes = [ecdsa_secp521r1_sha512, ecdsa_secp384r1_sha384, ecdsa_secp256r1_sha256,
               ecdsa_sha1, rsa_pss_pss_sha512, rsa_pss_pss_sha384, rsa_pss_pss_sha256,
               rsa_pss_rsae_sha512, rsa_pss_rsae_sha384, rsa_pss_rsae_sha256,
               rsa_pkcs1_sha512, rsa_pkcs1_sha384, rsa_pkcs1_sha256, rsa_pkcs1_sha1],
    case lists:member(Scheme, Schemes) of
        true -> atom_to_list(Scheme);
        false -> throw({options, {Scheme, Opt}})
    end.

group_name(x25519) -> "X25519";
group_name(x448) -> "X448";
group_name(secp256r1) -> "P-256";
group_name(secp384r1) -> "P-384";
group_name(secp521r1) -> "P-521";
group_name(ffdhe2048) -> "ffdhe2048";
group_name(ffdhe3072) -> "ffdhe3072";
group_name(ffdhe4096) -> "ffdhe4096";
group_name(ffdhe6144) -> "ffdhe6144";
group_name(ffdhe8192) -> "ffdhe8192";
group_name(_) -> unknown.

check_combinations(Role, Tls0 = #{tlsv1_only := Opts}) ->
    %% As OTP's ssl: the missing version is reported before a bad value.
    Tls = maps:remove(tlsv1_only, Tls0),
    Versions = maps:get(versions, Tls, ['tlsv1.3', 'tlsv1.2']),
    {Key, _} = lists:last(Opts),
    lists:member(tlsv1, Versions)
        orelse throw({options, dependency, {Key, {versions, [tlsv1]}}}),
    lists:foreach(fun({padding_check, B}) when is_boolean(B) -> ok;
                     ({beast_mitigation, M}) when M =:= one_n_minus_one; M =:= zero_n;
                                                  M =:= disabled -> ok;
                     (Opt) -> throw({options, Opt})
                  end, Opts),
    check_combinations(Role, Tls);
check_combinations(_Role, Tls = #{verify := verify_peer}) ->
    %% As OTP's ssl: a verify_fun may do without trusted certificates.
    case maps:is_key(cacerts, Tls) orelse maps:is_key(cacertfile, Tls)
        orelse maps:is_key(verify_fun, Tls) of
        true -> Tls;
        false -> throw({options, {cacertfile, []}})
    end;
check_combinations(_Role, Tls) ->
    Tls.

%% @doc Options a fun returned for an SNI host name, over the listener's.
-spec sni_options(list(), map()) -> {ok, map()} | {error, term()}.
sni_options(HostOptions, Base) ->
    try split(server, HostOptions, #{tcp => [], emulated => [], tls => #{},
                                     sni => undefined}) of
        #{tls := HostTls} -> {ok, maps:merge(Base, HostTls)}
    catch
        throw:{options, _} = Reason -> {error, Reason};
        throw:{options, no_supported_signature_schemes, _} = Reason -> {error, Reason}
    end.

%% @doc The map the NIF builds its configuration from.
-spec tls_map(role(), map()) -> map().
tls_map(Role, Tls) ->
    with_crls(Tls#{role => Role}).

%% CRLs checking needs: those of the internal cache (rssl_crl_cache),
%% unless a hashed directory is the cache (as in OTP, then the only one).
with_crls(Tls = #{crl_dir := _}) ->
    Tls;
with_crls(Tls = #{crl_check := Check}) when Check =/= false ->
    Tls#{crls => rssl_crl_cache:crls()};
with_crls(Tls) ->
    Tls.

%% @doc What the client sends as SNI and checks the certificate against.
-spec peer(term(), undefined | disable | string(), map()) -> map().
peer(Host, SNI, Tls) ->
    HostName = host_name(Host),
    Sni = case SNI of
              undefined when HostName =/= undefined ->
                  case is_ip(HostName) of
                      true -> undefined;
                      false -> HostName
                  end;
              undefined -> undefined;
              disable -> undefined;
              Name -> Name
          end,
    %% With a verify_fun, OTP checks the host name whatever `verify' says
    %% (and tells the fun when it does not match).
    Verify = case maps:is_key(verify_fun, Tls) of
                 true -> verify_peer;
                 false -> maps:get(verify, Tls, verify_none)
             end,
    Check = case {Verify, SNI} of
                {verify_none, _} -> undefined;
                {verify_peer, Name2} when is_list(Name2) -> Name2;
                {verify_peer, _} -> HostName
            end,
    #{sni => to_bin(Sni), verify_host => to_bin(Check)}.

%% customize_hostname_check done in Erlang: OpenSSL checks no name, and the
%% verify fun (the user's, or one acting as OTP's default) hears
%% `{bad_cert, hostname_check_failed}' instead of `valid_peer' when
%% public_key:pkix_verify_hostname/3 with the customization says no.
-spec hostname_check(map(), map()) -> {map(), map()}.
hostname_check(Peer = #{verify_host := Name}, Tls = #{hostname_check := Custom})
  when is_binary(Name) ->
    Host = binary_to_list(Name),
    RefIds = case inet:parse_address(Host) of
                 {ok, Ip} -> [{ip, Ip}];
                 _ -> [{dns_id, Host}]
             end,
    {Fun, Initial} = maps:get(verify_fun, Tls, {fun default_verify/3, []}),
    {Peer#{verify_host := undefined},
     (maps:remove(hostname_check, Tls))#{verify_fun => {Fun, Initial, {hostname, RefIds, Custom}}}};
hostname_check(Peer, Tls) ->
    {Peer, maps:remove(hostname_check, Tls)}.

%% What OTP's ssl does without a verify_fun.
default_verify(_, {bad_cert, _} = Reason, _) -> {fail, Reason};
default_verify(_, {extension, _}, State) -> {unknown, State};
default_verify(_, valid, State) -> {valid, State};
default_verify(_, valid_peer, State) -> {valid, State}.

host_name(Host) when is_list(Host) -> Host;
host_name(Host) when is_atom(Host) -> atom_to_list(Host);
host_name(Host) when is_binary(Host) -> binary_to_list(Host);
host_name(Host) when is_tuple(Host) ->
    case inet:ntoa(Host) of
        {error, _} -> undefined;
        Text -> Text
    end;
host_name(_) -> undefined.

is_ip(Name) ->
    case inet:parse_address(Name) of
        {ok, _} -> true;
        _ -> false
    end.

to_bin(undefined) -> undefined;
to_bin(S) -> unicode:characters_to_binary(S).

%% Options Base with each {Key, Value} of Overrides in place of Base's own
%% (added when Base has none), in order.
-spec override([{atom(), term()}], [{atom(), term()}]) -> [{atom(), term()}].
override(Base, Overrides) ->
    lists:foldl(fun({K, _} = O, Acc) -> lists:keystore(K, 1, Acc, O) end, Base, Overrides).
