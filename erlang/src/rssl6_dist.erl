%% @doc Erlang distribution over rssl on IPv6: `erl -proto_dist rssl6'.
%% rssl_dist with OTP's IPv6 TCP driver; the options are the same.
-module(rssl6_dist).

-export([childspecs/0, select/1, address/0, is_node_name/1,
         listen/1, listen/2, accept/1, accept_connection/5,
         setup/5, close/1, setopts/2, getopts/2]).

-define(DRIVER, inet6_tcp).

childspecs() -> rssl_dist:childspecs().
select(Node) -> rssl_dist:fam_select(?DRIVER, Node).
address() -> rssl_dist:fam_address(?DRIVER).
is_node_name(Node) -> rssl_dist:is_node_name(Node).

listen(Name) ->
    {ok, Host} = inet:gethostname(),
    listen(Name, Host).
listen(Name, Host) -> rssl_dist:fam_listen(?DRIVER, Name, Host).

accept(Listen) -> rssl_dist:fam_accept(?DRIVER, Listen).

accept_connection(AcceptPid, Ctrl, MyNode, Allowed, SetupTime) ->
    rssl_dist:fam_accept_connection(?DRIVER, AcceptPid, Ctrl, MyNode, Allowed, SetupTime).

setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    rssl_dist:fam_setup(?DRIVER, Node, Type, MyNode, LongOrShortNames, SetupTime).

close(Listen) -> rssl_dist:close(Listen).
setopts(Listen, Opts) -> rssl_dist:setopts(Listen, Opts).
getopts(Listen, Opts) -> rssl_dist:getopts(Listen, Opts).
