%% @doc Cipher suites: listing them as `ssl' does, and the `ciphers' option in
%% its OTP forms (OpenSSL-style string, list of names, of `{Kex, Cipher, Mac}'
%% tuples, or of suite maps) turned into OpenSSL's two lists.
-module(rssl_ciphers).

-export([groups/1, eccs/0,
         to_openssl/2, suites/2, suites/3, old_suites/1]).

%% What OpenSSL calls every suite it has, and what rssl enables by default.
-define(ALL12, "ALL:COMPLEMENTOFALL").
-define(ALL13, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
               "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256").
-define(DEFAULT12, "DEFAULT").
-define(DEFAULT13, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256").

-define(ANONYMOUS, [dh_anon, ecdh_anon, psk, dhe_psk, rsa_psk, ecdhe_psk, srp_anon]).

%% @doc `ssl:cipher_suites/2': suites as maps.
-spec suites(atom(), rssl:protocol_version()) -> [rssl:erl_cipher_suite()].
suites(Description, Version) ->
    [maps:with([key_exchange, cipher, mac, prf], S) || S <- described(Description, Version)].

%% @doc `ssl:cipher_suites/3': suites by their RFC or OpenSSL names.
-spec suites(atom(), rssl:protocol_version(), rfc | openssl) -> [string()].
suites(Description, Version, rfc) ->
    [maps:get(standard_name, S) || S <- described(Description, Version)];
suites(Description, Version, openssl) ->
    [maps:get(openssl_name, S) || S <- described(Description, Version)].

%% @doc The pre-OTP-21 `ssl:cipher_suites/0,1'.
-spec old_suites(erlang | openssl | all) -> [rssl:old_cipher_suite() | string()].
old_suites(erlang) ->
    [{K, C, M} || #{key_exchange := K, cipher := C, mac := M} <- listed(default)];
old_suites(openssl) ->
    [N || #{openssl_name := N} <- listed(default)];
old_suites(all) ->
    [{K, C, M} || #{key_exchange := K, cipher := C, mac := M} <- listed(all)].

%% The suites of a public Description (not select/2's own exclusive_default).
described(Description, Version) when Description =:= exclusive_default ->
    erlang:error(badarg, [Description, Version]);
described(Description, Version) ->
    select(Description, Version).

%% As OTP 25's ssl: `default' and `all' for TLS 1.3 are the TLS 1.3 suites
%% and then those of TLS 1.2 (a client offering both versions offers both),
%% `exclusive' only the TLS 1.3 ones.
select(Description, 'tlsv1.3') when Description =:= default; Description =:= all ->
    select(exclusive_of(Description), 'tlsv1.3') ++ select(Description, 'tlsv1.2');
%% DTLS has the suites of the TLS version it is built on but the stream
%% cipher RC4 (RFC 6347 4.1.2.2), as OTP 25 lists them.
select(Description, 'dtlsv1.2') ->
    without_rc4(select(Description, 'tlsv1.2'));
select(Description, dtlsv1) ->
    without_rc4(select(Description, 'tlsv1.1'));
select(Description, Version) ->
    Suites = case Description of
                 default -> listed(default);
                 all -> listed(all);
                 exclusive -> listed(all);
                 exclusive_default -> listed(default);
                 anonymous -> [S || S <- listed(all), is_anonymous(S)];
                 exclusive_anonymous -> [S || S <- listed(all), is_anonymous(S)];
                 _ -> erlang:error(badarg, [Description, Version])
             end,
    Exclusive = lists:member(Description, [exclusive, exclusive_default, exclusive_anonymous]),
    [S || S <- Suites, for_version(S, Version, Exclusive)].

is_anonymous(#{key_exchange := K}) -> lists:member(K, ?ANONYMOUS).

without_rc4(Suites) -> [S || #{cipher := C} = S <- Suites, C =/= rc4_128].

%% The TLS 1.3 suites of a description.
exclusive_of(default) -> exclusive_default;
exclusive_of(all) -> exclusive.

%% `protocol' is the oldest version a suite works with.
for_version(#{protocol := P}, 'tlsv1.3', _) -> P =:= "TLSv1.3";
for_version(#{protocol := P}, 'tlsv1.2', true) -> P =:= "TLSv1.2";
for_version(#{protocol := P}, 'tlsv1.2', false) -> P =/= "TLSv1.3";
for_version(#{protocol := P}, V, _) when V =:= 'tlsv1.1'; V =:= tlsv1 ->
    P =:= "TLSv1.0" orelse P =:= "SSLv3";
for_version(_, V, _) ->
    erlang:error(badarg, [V]).

%% Listing asks OpenSSL once; the answer never changes in a VM.
listed(Which) ->
    Key = {?MODULE, Which},
    case persistent_term:get(Key, undefined) of
        undefined ->
            {List12, List13} = case Which of
                                   all -> {?ALL12, ?ALL13};
                                   default -> {?DEFAULT12, ?DEFAULT13}
                               end,
            {ok, Suites} = rssl_nif:suites(list_to_binary(List12), list_to_binary(List13)),
            Default = [S || #{key_exchange := K} = S <- Suites, Which =:= all orelse
                                                               not lists:member(K, ?ANONYMOUS)],
            persistent_term:put(Key, Default),
            Default;
        Suites ->
            Suites
    end.

%% @doc Returns `{List12, List13}' (each a binary or `undefined').
-spec to_openssl(term(), term()) -> {binary() | undefined, binary() | undefined}.
to_openssl(Ciphers, Opt) when is_binary(Ciphers) ->
    to_openssl(binary_to_list(Ciphers), Opt);
to_openssl([C | _] = Ciphers, Opt) when is_integer(C) ->
    to_openssl(string:lexemes(Ciphers, ":"), Opt);
to_openssl(Ciphers, Opt) when is_list(Ciphers), Ciphers =/= [] ->
    Names = [name(C, Opt) || C <- Ciphers],
    {Tls13, Tls12} = lists:partition(fun is_tls13/1, Names),
    {join(Tls12), join(Tls13)};
to_openssl(_, Opt) ->
    throw({options, Opt}).

name(C, Opt) when is_binary(C) -> name(binary_to_list(C), Opt);
name(C, Opt) when is_list(C) ->
    case io_lib:printable_latin1_list(C) of
        true -> C;
        false -> throw({options, Opt})
    end;
name({K, C, M}, Opt) ->
    find(fun(#{key_exchange := K1, cipher := C1, mac := M1}) ->
                 {K1, C1, M1} =:= {K, C, M}
         end, Opt);
name({K, C, M, P}, Opt) ->
    name(#{key_exchange => K, cipher => C, mac => M, prf => P}, Opt);
name(#{key_exchange := _, cipher := _, mac := _} = Wanted, Opt) ->
    find(fun(S) -> maps:with(maps:keys(Wanted), S) =:= Wanted end, Opt);
name(_, Opt) ->
    throw({options, Opt}).

find(Match, Opt) ->
    case [S || S <- listed(all), Match(S)] of
        [#{openssl_name := Name} | _] -> Name;
        [] -> throw({options, Opt})
    end.

%% TLS 1.3 suites have IANA names starting with TLS_ and no key exchange.
is_tls13("TLS_AES_" ++ _) -> true;
is_tls13("TLS_CHACHA20_" ++ _) -> true;
is_tls13(_) -> false.

%% An empty part keeps OpenSSL's default list for those versions.
join([]) -> undefined;
join(Names) -> iolist_to_binary(lists:join(":", Names)).

%% The key exchange groups `supported_groups' accepts (all), and those
%% offered when it is not given (default: OpenSSL's default list).
-spec groups(all | default) -> [rssl:group()].
groups(all) ->
    [x25519, x448, secp256r1, secp384r1, secp521r1,
     ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192];
groups(default) ->
    [x25519, secp256r1, x448, secp521r1, secp384r1,
     ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192].

%% The named curves used for ECDHE up to TLS 1.2: OpenSSL's default groups.
-spec eccs() -> [rssl:named_curve()].
eccs() -> [secp521r1, secp384r1, secp256r1].
