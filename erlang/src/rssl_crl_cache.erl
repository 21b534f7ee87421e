%% @doc The internal CRL cache, as OTP's `ssl_crl_cache' has it: CRLs put
%% here are used by connections with `{crl_check, true | peer |
%% best_effort}' (and the default `crl_cache'). Configurations made after
%% a change see it; established connections keep what they had.
%%
%% OpenSSL finds a certificate's CRL by its issuer, so the URI a CRL is
%% inserted under serves delete/1, and fetch/2: with `{crl_cache,
%% {ssl_crl_cache, {internal, [{http, Timeout}]}}}' a certificate whose CRL
%% is not known has it fetched (OTP's httpc) from its http distribution
%% points during the handshake, and kept here under that URI, as OTP's
%% ssl_crl_cache does.
-module(rssl_crl_cache).

-export([insert/1, insert/2, delete/1, crls/0, fetch/2]).

-define(KEY, {?MODULE, crls}).
-define(NO_DIST_POINT, "http://dummy/no_distribution_point").

-type crl_src() :: {file, file:filename()} | {der, [public_key:der_encoded()]}.

%% @doc Adds CRLs (`{file, PemFile}' or `{der, [DerCrl]}').
-spec insert(crl_src()) -> ok | {error, term()}.
insert(CRLs) ->
    insert(?NO_DIST_POINT, CRLs).

-spec insert(uri_string:uri_string(), crl_src()) -> ok | {error, term()}.
insert(URI, CRLs) when is_list(URI); is_binary(URI) ->
    case ders(CRLs) of
        {ok, Ders} ->
            update(fun(All) ->
                           Key = to_list(URI),
                           Old = maps:get(Key, All, []),
                           All#{Key => Old ++ (Ders -- Old)}
                   end);
        Error ->
            Error
    end;
insert(_, _) ->
    {error, badarg}.

%% @doc Removes the CRLs inserted under a URI, or the CRLs given.
-spec delete(uri_string:uri_string() | crl_src()) -> ok | {error, term()}.
delete({Kind, _} = CRLs) when Kind =:= file; Kind =:= der ->
    case ders(CRLs) of
        {ok, Ders} ->
            update(fun(All) -> maps:map(fun(_, Old) -> Old -- Ders end, All) end);
        Error ->
            Error
    end;
delete(URI) when is_list(URI); is_binary(URI) ->
    update(fun(All) -> maps:remove(to_list(URI), All) end);
delete(_) ->
    {error, badarg}.

%% @doc Every CRL in the cache, DER.
-spec crls() -> [public_key:der_encoded()].
crls() ->
    lists:usort(lists:append(maps:values(persistent_term:get(?KEY, #{})))).

%% @doc The CRLs at distribution points `Urls': those kept under each URI,
%% else fetched with httpc (at most `Timeout' milliseconds each) and kept.
%% A point that cannot be fetched gives none.
-spec fetch([string()], timeout()) -> [public_key:der_encoded()].
fetch(Urls, Timeout) ->
    All = persistent_term:get(?KEY, #{}),
    lists:usort(lists:append([case All of
                                  #{Url := Ders} when Ders =/= [] -> Ders;
                                  _ -> download(Url, Timeout)
                              end || Url <- Urls])).

download(Url, Timeout) ->
    {ok, _} = application:ensure_all_started(inets),
    case httpc:request(get, {Url, []}, [{timeout, Timeout}], [{body_format, binary}]) of
        {ok, {{_, 200, _}, _Headers, Body}} ->
            Ders = case Body of
                       <<"-----BEGIN", _/binary>> ->
                           [Der || {'CertificateList', Der, not_encrypted}
                                       <- public_key:pem_decode(Body)];
                       _ ->
                           [Body]
                   end,
            ok = insert(Url, {der, Ders}),
            Ders;
        _ ->
            []
    end.

update(Fun) ->
    %% One writer at a time; readers never wait.
    global:trans({?MODULE, self()},
                 fun() -> persistent_term:put(?KEY, Fun(persistent_term:get(?KEY, #{}))) end,
                 [node()]),
    ok.

ders({der, Ders}) when is_list(Ders) ->
    case lists:all(fun is_binary/1, Ders) of
        true -> {ok, Ders};
        false -> {error, badarg}
    end;
ders({file, Path}) ->
    case file:read_file(Path) of
        {ok, Pem} ->
            try public_key:pem_decode(Pem) of
                Entries ->
                    {ok, [Der || {'CertificateList', Der, not_encrypted} <- Entries]}
            catch
                _:_ -> {error, {bad_pem, Path}}
            end;
        Error ->
            Error
    end;
ders(_) ->
    {error, badarg}.

to_list(URI) when is_binary(URI) -> binary_to_list(URI);
to_list(URI) -> URI.
