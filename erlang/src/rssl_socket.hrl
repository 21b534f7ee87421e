%% The socket records rssl's modules share.

-record(sslsocket, {handle, listen}).
%% A connection:    #sslsocket{handle = NifResource, listen = undefined}
%% A listen socket: #sslsocket{handle = undefined, listen = #listen{}}
-record(listen, {tcp, config, emulated, tls, transport}).
%% `transport' is `{Module, Tags}' from cb_info ({gen_tcp, _} by default).
%% `emulated' is a NIF cell holding the emulated options accepted sockets
%% start with; setopts/2 on the listen socket changes it.

-define(IS_CONN(S), (is_record(S, sslsocket) andalso S#sslsocket.handle =/= undefined)).
