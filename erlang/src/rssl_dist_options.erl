%% @doc The options of rssl_dist's connections, read once when the
%% distribution starts: `-rssl_dist_optfile File' (`[{server, Opts},
%% {client, Opts}]', as inet_tls's -ssl_dist_optfile) or else
%% `-rssl_dist_opt' flags (server_*/client_* pairs, as -ssl_dist_opt).
%% Without `versions', TLS 1.2, as OTP 25's inet_tls.
-module(rssl_dist_options).

-export([load/0, get/1]).

-define(KEY, {rssl_dist, options}).

%% The options of one side (server | client), as loaded by load/0.
-spec get(server | client) -> [rssl:tls_option()].
get(Side) ->
    maps:get(Side, persistent_term:get(?KEY, #{}), []).

%% Reads the file or the flags once, when the distribution starts: ok, or
%% {error, Reason} (logged) that stops the start.
-spec load() -> ok | {error, term()}.
load() ->
    try
        Loaded = case init:get_argument(rssl_dist_optfile) of
                     {ok, [[File]]} -> read_optfile(File);
                     {ok, Bad} -> throw({bad_rssl_dist_optfile, Bad});
                     error -> from_flags()
                 end,
        persistent_term:put(?KEY, maps:map(fun(_, Opts) -> dist_defaults(Opts) end, Loaded)),
        %% The NIF, loaded now so that a missing one stops the start.
        case code:ensure_loaded(rssl_nif) of
            {module, _} -> ok;
            {error, Why} -> throw({rssl_nif_not_loaded, Why})
        end
    catch
        throw:Reason ->
            logger:error("rssl distribution: ~p~n", [Reason]),
            {error, Reason}
    end.

%% The file server may not be up yet when the distribution starts.
read_optfile(File) ->
    Sides = case erl_prim_loader:get_file(File) of
                {ok, Bin, _} -> parse_term(File, Bin);
                error -> throw({bad_rssl_dist_optfile, {File, enoent}})
            end,
    is_list(Sides) orelse bad_optfile(File, Sides),
    lists:foldl(fun({Side, Opts}, Acc) when (Side =:= server orelse Side =:= client),
                                            is_list(Opts) ->
                        Acc#{Side => Opts};
                   (Other, _) ->
                        bad_optfile(File, Other)
                end, #{}, Sides).

-spec bad_optfile(file:filename(), term()) -> no_return().
bad_optfile(File, What) ->
    throw({bad_rssl_dist_optfile, {File, What}}).

parse_term(File, Bin) ->
    Text = case unicode:characters_to_list(Bin) of
               L when is_list(L) -> L;
               _ -> binary_to_list(Bin)
           end,
    case erl_scan:string(Text) of
        {ok, Tokens, _} ->
            case erl_parse:parse_term(Tokens) of
                {ok, Term} -> Term;
                {error, Info} -> throw({bad_rssl_dist_optfile, {File, Info}})
            end;
        {error, Info, _} ->
            throw({bad_rssl_dist_optfile, {File, Info}})
    end.

%% Without a version the connections use TLS 1.2, as OTP 25's inet_tls.
dist_defaults(Opts) ->
    case lists:keymember(versions, 1, Opts) of
        true -> Opts;
        false -> [{versions, ['tlsv1.2']} | Opts]
    end.

%% `-rssl_dist_opt server_certfile F client_verify verify_peer ...': pairs
%% of a side-prefixed option name and its value, as -ssl_dist_opt.
from_flags() ->
    Args = case init:get_argument(rssl_dist_opt) of
               {ok, Lists} -> lists:append(Lists);
               error -> []
           end,
    flags(Args, #{server => [], client => []}).

flags([], Acc) ->
    maps:map(fun(_, Opts) -> lists:reverse(Opts) end, Acc);
flags(["server_" ++ Name, Value | Rest], Acc = #{server := S}) ->
    flags(Rest, Acc#{server := [flag(server, Name, Value) | S]});
flags(["client_" ++ Name, Value | Rest], Acc = #{client := C}) ->
    flags(Rest, Acc#{client := [flag(client, Name, Value) | C]});
flags(Args, _) ->
    throw({malformed_rssl_dist_opt, Args}).

flag(server, "dhfile", V) -> {dhfile, V};
flag(server, "fail_if_no_peer_cert", V) -> {fail_if_no_peer_cert, list_to_atom(V)};
flag(_, "certfile", V) -> {certfile, V};
flag(_, "cacertfile", V) -> {cacertfile, V};
flag(_, "keyfile", V) -> {keyfile, V};
flag(_, "password", V) -> {password, V};
flag(_, "verify", V) -> {verify, list_to_atom(V)};
flag(_, "verify_fun", V) ->
    case term(V) of
        {M, F, State} when is_atom(M), is_atom(F) -> {verify_fun, {fun M:F/3, State}};
        _ -> throw({malformed_rssl_dist_opt, ["verify_fun", V]})
    end;
flag(_, "crl_check", V) -> {crl_check, list_to_atom(V)};
flag(_, "crl_cache", V) -> {crl_cache, term(V)};
flag(_, "reuse_sessions", V) -> {reuse_sessions, list_to_atom(V)};
flag(_, "secure_renegotiate", V) -> {secure_renegotiate, list_to_atom(V)};
flag(_, "depth", V) -> {depth, list_to_integer(V)};
flag(_, "hibernate_after", V) -> {hibernate_after, list_to_integer(V)};
flag(_, "ciphers", V) -> {ciphers, V};
flag(_, "versions", V) -> {versions, [list_to_atom(T) || T <- string:lexemes(V, ",")]};
flag(Side, Name, V) -> throw({malformed_rssl_dist_opt, [atom_to_list(Side) ++ "_" ++ Name, V]}).

term(String) ->
    try
        {ok, Tokens, _} = erl_scan:string(String ++ "."),
        {ok, Term} = erl_parse:parse_term(Tokens),
        Term
    catch
        _:_ -> throw({malformed_rssl_dist_opt, String})
    end.
