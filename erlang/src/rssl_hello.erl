%% The peer's hello as `{handshake, hello}' reports it: OTP's map of hello
%% extensions, made from the extensions the NIF copied off the wire.
%%
%% As OTP 25's `ssl': a server sees the client's hello in the shape of the
%% version it will speak (TLS 1.3 when both sides have it: group names,
%% signature scheme names, key shares; else TLS 1.2's curve OIDs and
%% `{Hash, Sign}' pairs); a client sees the ServerHello's extensions (in
%% TLS 1.3 only those of the ServerHello itself: the rest is encrypted).
%% Every key OTP reports is there, `undefined' when the extension was not
%% sent.
-module(rssl_hello).

-export([extensions/2]).

-define(SNI, 0).
-define(SRP, 12).
-define(GROUPS, 10).
-define(POINT_FORMATS, 11).
-define(SIGNATURE_ALGS, 13).
-define(ALPN, 16).
-define(PRE_SHARED_KEY, 41).
-define(SUPPORTED_VERSIONS, 43).
-define(COOKIE, 44).
-define(PSK_MODES, 45).
-define(CERTIFICATE_AUTHORITIES, 47).
-define(SIGNATURE_ALGS_CERT, 50).
-define(KEY_SHARE, 51).
-define(NPN, 13172).
-define(RENEGOTIATION_INFO, 16#ff01).

%% `Hello' is what the NIF sent: `{client_hello, [{Type, Data}]}' (a server
%% stopped) or `{server_hello, Body}' (a client stopped). `Tls' is the
%% connection's TLS options (the versions it allows).
-spec extensions({client_hello, [{non_neg_integer(), binary()}]} | {server_hello, binary()},
                 map()) -> map().
extensions({client_hello, Exts}, Tls) ->
    Get = fun(Type) -> proplists:get_value(Type, Exts) end,
    Versions = opt(Get(?SUPPORTED_VERSIONS), fun client_versions/1),
    Tls13 = lists:member('tlsv1.3', maps:get(versions, Tls, ['tlsv1.3', 'tlsv1.2']))
        andalso is_list(Versions) andalso lists:member({3, 4}, Versions),
    case Tls13 of
        true ->
            #{alpn => opt(Get(?ALPN), fun vector16/1),
              certificate_authorities => opt(Get(?CERTIFICATE_AUTHORITIES),
                                             fun certificate_authorities/1),
              client_hello_versions => Versions,
              cookie => opt(Get(?COOKIE), fun vector16/1),
              ec_point_formats => opt(Get(?POINT_FORMATS), fun point_formats/1),
              elliptic_curves => opt(Get(?GROUPS), fun groups/1),
              key_share => opt(Get(?KEY_SHARE), fun client_key_shares/1),
              pre_shared_key => opt(Get(?PRE_SHARED_KEY), fun offered_psks/1),
              psk_key_exchange_modes => opt(Get(?PSK_MODES), fun psk_modes/1),
              signature_algs => opt(Get(?SIGNATURE_ALGS), fun schemes/1),
              signature_algs_cert => opt(Get(?SIGNATURE_ALGS_CERT), fun schemes/1),
              sni => opt(Get(?SNI), fun server_name/1)};
        false ->
            #{alpn => opt(Get(?ALPN), fun vector16/1),
              ec_point_formats => opt(Get(?POINT_FORMATS), fun point_formats/1),
              elliptic_curves => opt(Get(?GROUPS), fun curve_oids/1),
              next_protocol_negotiation => Get(?NPN),
              renegotiation_info => Get(?RENEGOTIATION_INFO),
              signature_algs => opt(Get(?SIGNATURE_ALGS), fun hash_signs/1),
              sni => opt(Get(?SNI), fun server_name/1),
              srp => opt(Get(?SRP), fun srp/1)}
    end;
extensions({server_hello, Body}, _Tls) ->
    Exts = server_extensions(Body),
    Get = fun(Type) -> proplists:get_value(Type, Exts) end,
    case Get(?SUPPORTED_VERSIONS) of
        <<Major, Minor>> when {Major, Minor} >= {3, 4} ->
            #{key_share => opt(Get(?KEY_SHARE), fun server_key_share/1),
              pre_shared_key => opt(Get(?PRE_SHARED_KEY), fun selected_psk/1),
              server_hello_selected_version => {Major, Minor}};
        _ ->
            #{alpn => opt(Get(?ALPN), fun vector16/1),
              ec_point_formats => opt(Get(?POINT_FORMATS), fun point_formats/1),
              next_protocol_negotiation => Get(?NPN),
              renegotiation_info => Get(?RENEGOTIATION_INFO)}
    end.

%% A decoder applied to an extension that was sent; a malformed one (OpenSSL
%% checked what it uses, not every extension) reads as its raw bytes.
opt(undefined, _Decode) -> undefined;
opt(Data, Decode) ->
    try Decode(Data)
    catch error:_ -> Data
    end.

%% ServerHello: version, random, session id, suite, compression, then the
%% extensions (absent in old hellos).
server_extensions(<<_:16, _:32/binary, IdLen, _:IdLen/binary, _:16, _, Rest/binary>>) ->
    case Rest of
        <<Len:16, Exts:Len/binary, _/binary>> -> split_extensions(Exts);
        _ -> []
    end;
server_extensions(_) ->
    [].

split_extensions(<<Type:16, Len:16, Data:Len/binary, Rest/binary>>) ->
    [{Type, Data} | split_extensions(Rest)];
split_extensions(_) ->
    [].

%% The contents of a vector with a 16-bit length (ALPN's protocol list, as
%% OTP keeps it: still in wire form).
vector16(<<Len:16, Data:Len/binary>>) -> Data.

client_versions(<<Len, Data:Len/binary>>) ->
    [{Major, Minor} || <<Major, Minor>> <= Data].

point_formats(<<Len, Data:Len/binary>>) ->
    binary_to_list(Data).

server_name(<<Len:16, List:Len/binary>>) ->
    case [Name || <<0, NameLen:16, Name:NameLen/binary>> <= List] of
        [Name | _] -> binary_to_list(Name);
        [] -> undefined
    end.

srp(<<Len, User:Len/binary>>) -> {srp, User}.

groups(<<Len:16, Data:Len/binary>>) ->
    [G || <<Code:16>> <= Data, G <- [group(Code)], G =/= unknown].

curve_oids(<<Len:16, Data:Len/binary>>) ->
    [Oid || <<Code:16>> <= Data, Oid <- [curve_oid(Code)], Oid =/= unknown].

client_key_shares(<<Len:16, Data:Len/binary>>) ->
    [{key_share_entry, G, Key} || {Code, Key} <- key_entries(Data),
                                  G <- [group(Code)], G =/= unknown].

key_entries(<<Code:16, Len:16, Key:Len/binary, Rest/binary>>) ->
    [{Code, Key} | key_entries(Rest)];
key_entries(<<>>) ->
    [].

server_key_share(<<Code:16, Len:16, Key:Len/binary>>) ->
    {key_share_entry, group(Code), Key};
server_key_share(<<Code:16>>) ->
    %% A HelloRetryRequest names the group only.
    {key_share_hello_retry_request, group(Code)}.

psk_modes(<<Len, Data:Len/binary>>) ->
    [case M of 0 -> psk_ke; 1 -> psk_dhe_ke; _ -> M end || <<M>> <= Data].

offered_psks(<<IdsLen:16, Ids:IdsLen/binary, BindersLen:16, Binders:BindersLen/binary>>) ->
    {pre_shared_key_client_hello,
     {offered_psks,
      [{psk_identity, Id, Age} || {Id, Age} <- psk_identities(Ids)],
      [{psk_binder, B} || B <- psk_binders(Binders)]}}.

psk_identities(<<Len:16, Id:Len/binary, Age:32, Rest/binary>>) ->
    [{Id, Age} | psk_identities(Rest)];
psk_identities(<<>>) ->
    [].

psk_binders(<<Len, B:Len/binary, Rest/binary>>) ->
    [B | psk_binders(Rest)];
psk_binders(<<>>) ->
    [].

selected_psk(<<Index:16>>) -> {pre_shared_key_server_hello, Index}.

%% Distinguished names, DER.
certificate_authorities(<<Len:16, Data:Len/binary>>) ->
    dns(Data).

dns(<<Len:16, Dn:Len/binary, Rest/binary>>) -> [Dn | dns(Rest)];
dns(<<>>) -> [].

schemes(<<Len:16, Data:Len/binary>>) ->
    [S || <<Code:16>> <= Data, S <- [scheme(Code)], S =/= unknown].

hash_signs(<<Len:16, Data:Len/binary>>) ->
    [HS || <<Code:16>> <= Data, HS <- [hash_sign(Code)], HS =/= unknown].

%% TLS 1.3 signature schemes (RFC 8446) by OTP's names.
scheme(16#0401) -> rsa_pkcs1_sha256;
scheme(16#0501) -> rsa_pkcs1_sha384;
scheme(16#0601) -> rsa_pkcs1_sha512;
scheme(16#0403) -> ecdsa_secp256r1_sha256;
scheme(16#0503) -> ecdsa_secp384r1_sha384;
scheme(16#0603) -> ecdsa_secp521r1_sha512;
scheme(16#0804) -> rsa_pss_rsae_sha256;
scheme(16#0805) -> rsa_pss_rsae_sha384;
scheme(16#0806) -> rsa_pss_rsae_sha512;
scheme(16#0807) -> eddsa_ed25519;
scheme(16#0808) -> eddsa_ed448;
scheme(16#0809) -> rsa_pss_pss_sha256;
scheme(16#080a) -> rsa_pss_pss_sha384;
scheme(16#080b) -> rsa_pss_pss_sha512;
scheme(16#0201) -> rsa_pkcs1_sha1;
scheme(16#0203) -> ecdsa_sha1;
scheme(_) -> unknown.

%% TLS 1.2 {Hash, Sign} pairs; the TLS 1.3-only schemes (EdDSA) have none.
hash_sign(16#0804) -> {sha256, rsa_pss_rsae};
hash_sign(16#0805) -> {sha384, rsa_pss_rsae};
hash_sign(16#0806) -> {sha512, rsa_pss_rsae};
hash_sign(16#0809) -> {sha256, rsa_pss_pss};
hash_sign(16#080a) -> {sha384, rsa_pss_pss};
hash_sign(16#080b) -> {sha512, rsa_pss_pss};
hash_sign(Code) ->
    Hash = case Code bsr 8 of
               1 -> md5; 2 -> sha; 3 -> sha224; 4 -> sha256; 5 -> sha384; 6 -> sha512;
               _ -> unknown
           end,
    Sign = case Code band 16#ff of
               1 -> rsa; 2 -> dsa; 3 -> ecdsa; _ -> unknown
           end,
    case Hash =:= unknown orelse Sign =:= unknown of
        true -> unknown;
        false -> {Hash, Sign}
    end.

%% Named groups (RFC 8446, 7919) by OTP's names.
group(29) -> x25519;
group(30) -> x448;
group(23) -> secp256r1;
group(24) -> secp384r1;
group(25) -> secp521r1;
group(256) -> ffdhe2048;
group(257) -> ffdhe3072;
group(258) -> ffdhe4096;
group(259) -> ffdhe6144;
group(260) -> ffdhe8192;
group(_) -> unknown.

%% RFC 4492/8422 named curves as OTP 25 reports them before TLS 1.3: OIDs.
curve_oid(1) -> {1,3,132,0,1};          % sect163k1
curve_oid(2) -> {1,3,132,0,2};          % sect163r1
curve_oid(3) -> {1,3,132,0,15};         % sect163r2
curve_oid(4) -> {1,3,132,0,24};         % sect193r1
curve_oid(5) -> {1,3,132,0,25};         % sect193r2
curve_oid(6) -> {1,3,132,0,26};         % sect233k1
curve_oid(7) -> {1,3,132,0,27};         % sect233r1
curve_oid(8) -> {1,3,132,0,3};          % sect239k1
curve_oid(9) -> {1,3,132,0,16};         % sect283k1
curve_oid(10) -> {1,3,132,0,17};        % sect283r1
curve_oid(11) -> {1,3,132,0,36};        % sect409k1
curve_oid(12) -> {1,3,132,0,37};        % sect409r1
curve_oid(13) -> {1,3,132,0,38};        % sect571k1
curve_oid(14) -> {1,3,132,0,39};        % sect571r1
curve_oid(15) -> {1,3,132,0,9};         % secp160k1
curve_oid(16) -> {1,3,132,0,8};         % secp160r1
curve_oid(17) -> {1,3,132,0,30};        % secp160r2
curve_oid(18) -> {1,3,132,0,31};        % secp192k1
curve_oid(19) -> {1,2,840,10045,3,1,1}; % secp192r1
curve_oid(20) -> {1,3,132,0,32};        % secp224k1
curve_oid(21) -> {1,3,132,0,33};        % secp224r1
curve_oid(22) -> {1,3,132,0,10};        % secp256k1
curve_oid(23) -> {1,2,840,10045,3,1,7}; % secp256r1
curve_oid(24) -> {1,3,132,0,34};        % secp384r1
curve_oid(25) -> {1,3,132,0,35};        % secp521r1
curve_oid(26) -> {1,3,36,3,3,2,8,1,1,7};  % brainpoolP256r1
curve_oid(27) -> {1,3,36,3,3,2,8,1,1,11}; % brainpoolP384r1
curve_oid(28) -> {1,3,36,3,3,2,8,1,1,13}; % brainpoolP512r1
curve_oid(29) -> {1,3,101,110};         % x25519
curve_oid(30) -> {1,3,101,111};         % x448
curve_oid(_) -> unknown.
