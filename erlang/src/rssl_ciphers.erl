%% @doc The `ciphers' option in its OTP forms (OpenSSL-style string, list of
%% names, of `{Kex, Cipher, Mac}' tuples, or of suite maps) as the OpenSSL
%% lists for TLS 1.2 and older and for TLS 1.3.
-module(rssl_ciphers).

-export([to_openssl/2]).

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
name(C, _Opt) ->
    throw({options, {ciphers, {not_supported, C}}}).

%% TLS 1.3 suites have IANA names starting with TLS_ and no key exchange.
is_tls13("TLS_AES_" ++ _) -> true;
is_tls13("TLS_CHACHA20_" ++ _) -> true;
is_tls13(_) -> false.

%% An empty part keeps OpenSSL's default list for those versions.
join([]) -> undefined;
join(Names) -> iolist_to_binary(lists:join(":", Names)).
