%% Where the memory of an idle rssl connection goes: N idle TLS 1.3 pairs
%% (both ends in this VM, as the bench's memory row), every heap
%% allocation made while they open recorded with its call stack by
%% bench/c/heap_sites.c (LD_PRELOAD), and the ones still live once the
%% pairs are idle summed per pair, by who asked malloc (OpenSSL, rssl's
%% Rust code, or the rest of the process) and by the innermost rssl
%% function on the stack (addr2line on the NIF).
%%
%%   make bench-heap-sites                        # 500 pairs
%%   RSSL_HEAP_SITES_PAIRS=2000 make bench-heap-sites
%%
%% Bytes are the sizes asked for: malloc's own overhead (8-24 bytes a
%% block) comes on top. Stacks end at frames without unwind information:
%% OpenSSL's async job fibres (a paused handshake step) and the VM's JIT
%% code, shown as "(no rssl frame)".
-module(rssl_heap_sites).

-export([run/0]).

-define(T, 30000).

run() ->
    Dir = os:getenv("HEAP_SITES_DIR"),
    Dir =/= false orelse error(no_heap_sites_dir),
    N = list_to_integer(os:getenv("RSSL_HEAP_SITES_PAIRS", "500")),
    ok = rssl:start(),
    Tls = make_cert(Dir),
    Opts = [binary, {active, false}, {versions, ['tlsv1.3']}],
    {ok, L} = rssl:listen(0, [{backlog, 1024}, {reuseaddr, true} | Opts ++ Tls]),
    {ok, {_, Port}} = rssl:sockname(L),
    COpts = Opts ++ [{verify, verify_none}],
    %% One pair first: caches, tables and poller threads exist before.
    _Warm = open(L, Port, COpts, 1),
    touch(Dir, "on"),
    timer:sleep(200),
    Pairs = open(L, Port, COpts, N),
    %% Idle: every buffer an idle connection releases is released.
    timer:sleep(1000),
    ok = file:delete(filename:join(Dir, "on")),
    timer:sleep(200),
    touch(Dir, "dump"),
    Live = wait_for_dump(filename:join(Dir, "live.txt"), 600),
    report(N, parse(Live)),
    %% The pairs stay open until here.
    {Clients, _Servers} = Pairs,
    N = length(Clients),
    ok.

%% N pairs: the clients here, the server ends held by an acceptor.
open(L, Port, COpts, N) ->
    Self = self(),
    Acceptor = spawn_link(fun() -> accept(L, N, Self, []) end),
    Clients = [begin
                   {ok, C} = rssl:connect({127, 0, 0, 1}, Port, COpts, ?T),
                   C
               end || _ <- lists:seq(1, N)],
    receive {Acceptor, Servers} -> {Clients, Servers} after ?T -> error(accept_timeout) end.

accept(_L, 0, Parent, Held) ->
    Parent ! {self(), Held},
    receive never -> ok end;
accept(L, N, Parent, Held) ->
    {ok, T} = rssl:transport_accept(L, ?T),
    {ok, S} = rssl:handshake(T, ?T),
    accept(L, N - 1, Parent, [S | Held]).

touch(Dir, Name) ->
    ok = file:write_file(filename:join(Dir, Name), <<>>).

wait_for_dump(_File, 0) ->
    error(no_dump_from_heap_sites_so);
wait_for_dump(File, Tries) ->
    case file:read_file(File) of
        {ok, Bin} -> Bin;
        {error, enoent} -> timer:sleep(100), wait_for_dump(File, Tries - 1)
    end.

%% [{Bytes, [Frame]}], Frame = {Module, Offset}.
parse(Bin) ->
    [{binary_to_integer(Size), [frame(F) || F <- Frames]}
     || <<"A ", Line/binary>> <- binary:split(Bin, <<"\n">>, [global]),
        [Size | Frames] <- [binary:split(Line, <<" ">>, [global, trim_all])]].

frame(F) ->
    [Module, <<"0x", Hex/binary>>] = binary:split(F, <<"+">>),
    {Module, binary_to_integer(Hex, 16)}.

report(N, Records) ->
    Nif = filename:join(code:priv_dir(rssl), "rssl_nif.so"),
    Names = symbolize(Nif, lists:usort([Off || {_, Frames} <- Records,
                                               {<<"rssl_nif.so">>, Off} <- Frames])),
    Sites = lists:foldl(fun({Size, Frames}, Acc) ->
                                Key = {owner(Frames), site(Frames, Names)},
                                {B, C} = maps:get(Key, Acc, {0, 0}),
                                Acc#{Key => {B + Size, C + 1}}
                        end, #{}, Records),
    Total = lists:sum([S || {S, _} <- Records]),
    io:format("rssl heap sites: ~b idle TLS 1.3 pairs in one VM; heap blocks still live "
              "that were allocated while they opened, per pair (sizes asked for, without "
              "malloc's overhead)~n", [N]),
    io:format("  total ~.1f bytes in ~.1f blocks~n", [Total / N, length(Records) / N]),
    Owners = lists:foldl(fun({{O, _}, {B, C}}, Acc) ->
                                 {B0, C0} = maps:get(O, Acc, {0, 0}),
                                 Acc#{O => {B0 + B, C0 + C}}
                         end, #{}, maps:to_list(Sites)),
    [io:format("  ~-8s ~8.1f bytes in ~5.1f blocks~n", [O, B / N, C / N])
     || {O, {B, C}} <- lists:reverse(lists:keysort(2, maps:to_list(Owners)))],
    io:format("~n~12s ~7s  ~-8s ~s~n", ["bytes/pair", "blocks", "malloc'd", "innermost rssl function"]),
    [io:format("~12.1f ~7.2f  ~-8s ~s~n", [B / N, C / N, O, S])
     || {{O, S}, {B, C}} <- lists:reverse(lists:keysort(2, maps:to_list(Sites))),
        B / N >= 8].

%% Who called malloc: the first frame's module.
owner([{<<"libcrypto", _/binary>>, _} | _]) -> "OpenSSL";
owner([{<<"libssl", _/binary>>, _} | _]) -> "OpenSSL";
owner([{<<"rssl_nif.so">>, _} | _]) -> "rssl";
owner(_) -> "other".

%% The innermost rssl frame that is rssl's own code (not the standard
%% library's or the openssl crate's).
site(Frames, Names) ->
    Own = [Name || {<<"rssl_nif.so">>, Off} <- Frames,
                   Name <- [maps:get(Off, Names)],
                   lists:prefix("rssl::", Name) orelse lists:prefix("<rssl::", Name)],
    case Own of
        [Name | _] -> Name;
        [] -> "(no rssl frame)"
    end.

%% Offset => "function (file:line)", one addr2line run. A return address
%% points after its call: Offset - 1 is inside it.
symbolize(_Nif, []) ->
    #{};
symbolize(Nif, Offsets) ->
    File = filename:join(os:getenv("HEAP_SITES_DIR"), "addresses.txt"),
    ok = file:write_file(File, [io_lib:format("0x~.16b~n", [Off - 1]) || Off <- Offsets]),
    Out = os:cmd("addr2line -a -f -C -e '" ++ Nif ++ "' < '" ++ File ++ "'"),
    Lines = string:split(Out, "\n", all),
    maps:from_list(lists:zip(Offsets, names(Lines))).

names(["0x" ++ _, Function, Location | Rest]) ->
    [Function ++ " (" ++ filename:basename(Location) ++ ")" | names(Rest)];
names(_) ->
    [].

make_cert(Dir) ->
    Key = filename:join(Dir, "key.pem"),
    Cert = filename:join(Dir, "cert.pem"),
    Out = os:cmd(lists:flatten(
                   ["openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
                    " -sha256 -days 2 -subj /CN=localhost",
                    " -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
                    " -keyout '", Key, "' -out '", Cert, "' 2>&1"])),
    filelib:is_regular(Cert) orelse error({openssl_failed, Out}),
    [{certfile, Cert}, {keyfile, Key}].
