%% Alerts through `logger', as OTP 25's ssl logs them: a report at level
%% notice, `#{alert, alerter, protocol, role, statename}' with OTP's alert
%% record, formatted as ssl_logger formats it ("TLS client: In state ... at
%% File:Line generated CLIENT ALERT: Fatal - Bad Certificate"), sent only
%% when the connection's `log_level' lets notice through and `log_alert'
%% is not false. rssl logs the fatal alerts that end a handshake (sent or
%% received), from the process that ran it.
-module(rssl_logger).

-export([handshake_failed/2, format/1, valid_level/1]).

-define(LEVELS, [none, emergency, alert, critical, error, warning, notice, info, debug, all]).

-spec valid_level(term()) -> boolean().
valid_level(Level) -> lists:member(Level, ?LEVELS).

%% `Tls' is the connection's TLS options (with its `role'); `Reason' what
%% the handshake failed with.
-spec handshake_failed(map(), term()) -> ok.
handshake_failed(Tls, {tls_alert, {Name, Text}}) when is_atom(Name), is_list(Text) ->
    case wanted(Tls) of
        true -> log(maps:get(role, Tls, client), Name, Text);
        false -> ok
    end;
handshake_failed(_Tls, _Reason) ->
    ok.

wanted(Tls) ->
    Level = maps:get(log_level, Tls, notice),
    maps:get(log_alert, Tls, true) =/= false
        andalso Level =/= none
        andalso logger:compare_levels(notice, Level) =/= lt.

log(Role, Name, Text) ->
    case code(Name) of
        undefined ->
            ok;
        Code ->
            Own = string:find(Text, " generated ") =/= nomatch,
            Sender = case Own of
                         true -> Role;
                         false -> peer(Role)
                     end,
            Where = #{mfa => {rssl_handshake, run, 3}, file => "rssl_handshake.erl", line => 0},
            Alert = {alert, 2, Code, Where, Sender, detail(Text)},
            Report = #{alert => Alert,
                       alerter => case Own of true -> own; false -> peer end,
                       protocol => protocol(Text), role => Role, statename => state(Text)},
            logger:log(notice, Report, #{depth => 20, report_cb => fun ?MODULE:format/1,
                                         mfa => {?MODULE, log, 3}, file => ?FILE,
                                         line => ?LINE})
    end.

%% OTP's ssl_logger:format/1 for alert reports.
-spec format(logger:report()) -> {io:format(), [term()]}.
format(#{alert := {alert, _, Code, Where, Sender, Reason}, alerter := Alerter,
         protocol := Protocol, role := Role, statename := State}) ->
    Sent = string:uppercase(atom_to_list(Sender)) ++ " ALERT: Fatal - " ++ description(Code),
    Text = case Alerter of
               own ->
                   #{file := File, line := Line} = Where,
                   lists:flatten(io_lib:format("at ~s:~p generated ~s", [File, Line, Sent]));
               peer ->
                   "received " ++ Sent
           end,
    case Reason of
        undefined -> {"~s ~p: In state ~p ~s\n", [Protocol, Role, State, Text]};
        _ -> {"~s ~p: In state ~p ~s\n - ~p", [Protocol, Role, State, Text, Reason]}
    end.

%% The alert's text starts with the protocol's name, "TLS" or "DTLS".
protocol("DTLS" ++ _) -> "DTLS";
protocol(_) -> "TLS".

peer(client) -> server;
peer(server) -> client.

%% "TLS client: In state connection generated ...": the state named.
state(Text) ->
    case string:split(Text, "In state ") of
        [_, Rest] ->
            [State | _] = string:split(Rest, " "),
            try list_to_existing_atom(State) catch error:badarg -> connection end;
        _ ->
            connection
    end.

%% What follows the alert's description in the text, if anything.
detail(Text) ->
    case string:split(string:trim(Text, trailing, "\n"), " - ", trailing) of
        [Head, Detail] ->
            case string:find(Head, "ALERT: Fatal") of
                nomatch -> undefined;
                _ -> Detail
            end;
        _ -> undefined
    end.

code(Name) ->
    case lists:keyfind(Name, 2, alerts()) of
        {Code, _, _} -> Code;
        false -> undefined
    end.

description(Code) ->
    case lists:keyfind(Code, 1, alerts()) of
        {_, _, Text} -> Text;
        false -> "Unknown Alert"
    end.

alerts() ->
    [{10, unexpected_message, "Unexpected Message"},
     {20, bad_record_mac, "Bad Record MAC"},
     {22, record_overflow, "Record Overflow"},
     {30, decompression_failure, "Decompression Failure"},
     {40, handshake_failure, "Handshake Failure"},
     {42, bad_certificate, "Bad Certificate"},
     {43, unsupported_certificate, "Unsupported Certificate"},
     {44, certificate_revoked, "Certificate Revoked"},
     {45, certificate_expired, "Certificate Expired"},
     {46, certificate_unknown, "Certificate Unknown"},
     {47, illegal_parameter, "Illegal Parameter"},
     {48, unknown_ca, "Unknown CA"},
     {49, access_denied, "Access Denied"},
     {50, decode_error, "Decode Error"},
     {51, decrypt_error, "Decrypt Error"},
     {60, export_restriction, "Export Restriction"},
     {70, protocol_version, "Protocol Version"},
     {71, insufficient_security, "Insufficient Security"},
     {80, internal_error, "Internal Error"},
     {86, inappropriate_fallback, "Inappropriate Fallback"},
     {90, user_canceled, "User Canceled"},
     {100, no_renegotiation, "No Renegotiation"},
     {109, missing_extension, "Missing extension"},
     {110, unsupported_extension, "Unsupported Extension"},
     {111, certificate_unobtainable, "Certificate Unobtainable"},
     {112, unrecognized_name, "Unrecognised Name"},
     {113, bad_certificate_status_response, "Bad Certificate Status Response"},
     {114, bad_certificate_hash_value, "Bad Certificate Hash Value"},
     {115, unknown_psk_identity, "Unknown Psk Identity"},
     {116, certificate_required, "Certificate required"},
     {120, no_application_protocol, "No application protocol"}].
