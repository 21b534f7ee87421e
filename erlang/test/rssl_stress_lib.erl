%% Helpers for the load, concurrency, back-pressure and fault suites
%% (rssl_load_SUITE, rssl_concurrency_SUITE, rssl_backpressure_SUITE,
%% rssl_faults_SUITE): memory and descriptor readings, numbered frames
%% whose order and content a reader can check, and waiting for a process
%% to be blocked.
-module(rssl_stress_lib).

-export([rss_kb/0, memory/0, growth/2, log_memory/3,
         frame/2, frame_size/2, check_frame/2, new_order/0,
         blocked/1, wait_blocked/3,
         client_hello/1]).

%%% Memory --------------------------------------------------------------------

%% The VM's resident set (kB) as the kernel counts it: everything the NIF
%% and OpenSSL allocate is in it, unlike erlang:memory/0.
rss_kb() ->
    {ok, Status} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
    {match, [Kb]} = re:run(Status, <<"VmRSS:\\s+(\\d+) kB">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kb).

%% #{erlang => bytes the VM's allocators hold for Erlang terms,
%%   rss => bytes resident}.
memory() ->
    erlang:garbage_collect(),
    #{erlang => erlang:memory(total), rss => rss_kb() * 1024,
      heap => rssl_nif:heap_in_use()}.

%% Growth of each reading from Before to After, in bytes.
growth(Before, After) ->
    maps:map(fun(K, V) -> V - maps:get(K, Before) end, After).

log_memory(What, Before, After) ->
    ct:log("~s: ~p -> ~p (growth ~p)", [What, Before, After, growth(Before, After)]).

%%% Frames --------------------------------------------------------------------

%% Frame Seq of sender Id: <<Id:16, Seq:32, Body>>, 400..2500 bytes in all,
%% the body a slice of a fixed pattern chosen by Id and Seq, so a reader
%% can tell a frame that is whole, in its place, from any other.
frame(Id, Seq) ->
    Size = frame_size(Id, Seq),
    Body = binary:part(pattern(), (Id * 7919 + Seq * 13) rem 4096, Size - 6),
    <<Id:16, Seq:32, Body/binary>>.

frame_size(Id, Seq) ->
    400 + (Id * 131 + Seq * 977) rem 2101.

pattern() ->
    case persistent_term:get({?MODULE, pattern}, undefined) of
        undefined ->
            P = list_to_binary([(I * 37 + I div 251) rem 256 || I <- lists:seq(1, 8192)]),
            persistent_term:put({?MODULE, pattern}, P),
            P;
        P ->
            P
    end.

%% Per-sender order: the next sequence number each sender must send.
new_order() -> #{}.

%% {ok, Order1} if Frame is whole and the next one of its sender,
%% {error, Why} otherwise.
check_frame(<<Id:16, Seq:32, _/binary>> = Frame, Order) ->
    Next = maps:get(Id, Order, 0),
    case {Seq =:= Next, Frame =:= frame(Id, Seq)} of
        {true, true} -> {ok, Order#{Id => Next + 1}};
        {false, _} -> {error, {out_of_order, #{sender => Id, got => Seq, expected => Next}}};
        {true, false} -> {error, {corrupt, #{sender => Id, seq => Seq, size => byte_size(Frame)}}}
    end;
check_frame(Frame, _Order) ->
    {error, {runt, byte_size(Frame)}}.

%%% Blocked processes ---------------------------------------------------------

%% True when Pid is alive and waiting in a receive (a blocked call).
blocked(Pid) ->
    case process_info(Pid, status) of
        {status, waiting} -> true;
        _ -> false
    end.

%% Waits until every pid still alive (at least one) is blocked and
%% Progress() (a reading of how much they got done) stays the same across
%% several consecutive polls: the senders are held back, not just between
%% two calls. Pids that finished count as not held back. false on timeout.
wait_blocked(Pids, Progress, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_blocked(Pids, Progress, Deadline, Progress(), 0).

wait_blocked(Pids, Progress, Deadline, Last, Stable) ->
    timer:sleep(50),
    Now = Progress(),
    Alive = [P || P <- Pids, is_process_alive(P)],
    AllBlocked = Alive =/= [] andalso lists:all(fun blocked/1, Alive),
    if
        AllBlocked, Now =:= Last, Stable >= 5 -> true;
        AllBlocked, Now =:= Last -> wait_blocked(Pids, Progress, Deadline, Now, Stable + 1);
        true ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> false;
                false -> wait_blocked(Pids, Progress, Deadline, Now, 0)
            end
    end.

%%% Raw ClientHello -----------------------------------------------------------

%% The first flight (ClientHello record) an OTP ssl client sends with
%% Options, captured by a plain TCP listener.
client_hello(Options) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    Client = spawn(fun() -> ssl:connect({127, 0, 0, 1}, Port, Options, 5000) end),
    {ok, A} = gen_tcp:accept(L, 5000),
    {ok, <<22, _:16, Len:16>> = Header} = gen_tcp:recv(A, 5, 5000),
    {ok, Body} = gen_tcp:recv(A, Len, 5000),
    exit(Client, kill),
    ok = gen_tcp:close(A),
    ok = gen_tcp:close(L),
    <<Header/binary, Body/binary>>.
