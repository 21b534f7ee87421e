%% @doc Erlang distribution over rssl on IPv6: `erl -proto_dist rssl6'.
%% rssl_dist with OTP's IPv6 TCP driver; the options are the same.
-module(rssl6_dist).

-export([childspecs/0, select/1, address/0, is_node_name/1,
         listen/1, listen/2, accept/1, accept_connection/5,
         setup/5, close/1, setopts/2, getopts/2]).

-define(DRIVER, inet6_tcp).

-include_lib("kernel/include/net_address.hrl").

-spec childspecs() -> {ok, []}.
childspecs() -> rssl_dist:childspecs().
-spec select(node()) -> boolean().
select(Node) -> rssl_dist:fam_select(?DRIVER, Node).
-spec address() -> #net_address{}.
address() -> rssl_dist:fam_address(?DRIVER).
-spec is_node_name(node() | string()) -> boolean().
is_node_name(Node) -> rssl_dist:is_node_name(Node).

-spec listen(string() | atom()) -> {ok, {port(), #net_address{}, 1..3}} | {error, term()}.
listen(Name) ->
    {ok, Host} = inet:gethostname(),
    listen(Name, Host).
-spec listen(string() | atom(), inet:hostname()) ->
          {ok, {port(), #net_address{}, 1..3}} | {error, term()}.
listen(Name, Host) -> rssl_dist:fam_listen(?DRIVER, Name, Host).

-spec accept(port()) -> pid().
accept(Listen) -> rssl_dist:fam_accept(?DRIVER, Listen).

-spec accept_connection(pid(), rssl:sslsocket(), node(), [node()], non_neg_integer()) -> pid().
accept_connection(AcceptPid, Tls, MyNode, Allowed, SetupTime) ->
    rssl_dist:fam_accept_connection(?DRIVER, AcceptPid, Tls, MyNode, Allowed, SetupTime).

-spec setup(node(), hidden | normal, node(), shortnames | longnames, non_neg_integer()) -> pid().
setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    rssl_dist:fam_setup(?DRIVER, Node, Type, MyNode, LongOrShortNames, SetupTime).

-spec close(port()) -> ok.
close(Listen) -> rssl_dist:close(Listen).
-spec setopts(port(), [gen_tcp:option()]) -> ok | {error, term()}.
setopts(Listen, Opts) -> rssl_dist:setopts(Listen, Opts).
-spec getopts(port(), [atom()]) -> {ok, [gen_tcp:option()]} | {error, term()}.
getopts(Listen, Opts) -> rssl_dist:getopts(Listen, Opts).
