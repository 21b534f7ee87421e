%% @doc OTP's `verify_fun' and `partial_chain' over OpenSSL's verification.
%%
%% OpenSSL calls its verify callback once per certificate and error, in its
%% own order; OTP calls the verify fun with path validation events. This
%% module runs in the handshake's callback process (see
%% rssl_handshake:run/2) and turns one into the other, keeping the fun's
%% user state for the handshake:
%%
%% - a certificate of the trusted store (the trust anchor) is never shown,
%%   as OTP validates the path below its anchor;
%% - a chain that reaches no trusted CA gives `{bad_cert, unknown_ca}' (or
%%   `selfsigned_peer') for its topmost certificate; if the fun accepts,
%%   that certificate is the anchor, and is not shown again;
%% - each other certificate gives its errors (`{bad_cert, Reason}') and then
%%   `valid', or for the peer's own certificate `valid_peer' (replaced by
%%   `{bad_cert, hostname_check_failed}' when the host name does not match);
%% - revocation problems come after `valid'/`valid_peer', as in OTP;
%% - before `valid'/`valid_peer', each extension OTP's path validation does
%%   not handle itself gives `{extension, #'Extension'{}}' (decoded as
%%   public_key decodes it), in the certificate's order: `{valid, _}'
%%   accepts it, `{unknown, _}' fails a critical one with `{bad_cert,
%%   unknown_critical_extension}' and ignores another. OpenSSL's own
%%   complaint about a critical extension it does not know is left to
%%   these events.
%%
%% `{fail, Reason}' fails the handshake with the alert OTP sends for that
%% reason (certificate_expired, bad_certificate, unknown_ca, ...,
%% handshake_failure for reasons of the application's own).
-module(rssl_verify).

-export([verify/3, partial_chain/2]).

-include_lib("public_key/include/public_key.hrl").

%% X509_V_ERR_* codes.
-define(HOSTNAME_MISMATCH, 62).
-define(EMAIL_MISMATCH, 63).
-define(IP_MISMATCH, 64).
-define(UNABLE_TO_GET_ISSUER_CERT, 2).
-define(DEPTH_ZERO_SELF_SIGNED, 18).
-define(SELF_SIGNED_IN_CHAIN, 19).
-define(UNABLE_TO_GET_ISSUER_LOCALLY, 20).
-define(UNABLE_TO_VERIFY_LEAF_SIGNATURE, 21).
-define(CERT_HAS_EXPIRED, 10).
-define(CERT_REVOKED, 23).
-define(INVALID_PURPOSE, 26).
-define(CERT_REJECTED, 28).
-define(UNHANDLED_CRITICAL_EXTENSION, 34).
-define(APPLICATION_VERIFICATION, 50).

%% @doc One OpenSSL verify callback: `{Answer, State}' where Answer is
%% `accept' or `{fail, X509Error}' for the NIF. State is undefined at the
%% first call of a handshake.
%% The check is `{Der, Depth, X509Error, ReasonName, Trusted, CrlReason}';
%% the fun `{Fun, UserState}' or `{Fun, UserState, HostCheck}' (a
%% customize_hostname_check done here rather than by OpenSSL).
-spec verify({public_key:der_encoded(), non_neg_integer(), integer(), atom(),
              boolean(), integer() | undefined},
             {fun(), term()} | {fun(), term(), term()}, map() | undefined) ->
          {accept | {fail, non_neg_integer()}, map()}.
verify(Check, {Fun, Initial}, State) ->
    verify(Check, {Fun, Initial, undefined}, State);
verify({Der, Depth, Error, Reason, Trusted, CrlReason}, {Fun, Initial, HostCheck}, undefined) ->
    verify({Der, Depth, Error, Reason, Trusted, CrlReason}, {Fun, Initial, HostCheck},
           #{user => Initial, anchor => undefined, host_failed => false,
             host_check => HostCheck, deferred => #{}, seen => #{}});
verify({Der, Depth, Error, Reason, Trusted, CrlReason}, {Fun, _, _}, State) ->
    #{anchor := Anchor, seen := Seen} = State,
    if
        Anchor =/= undefined, Depth >= Anchor ->
            %% The certificate the fun accepted as anchor (or above it).
            {accept, State};
        Error =:= 0, Trusted ->
            {accept, State};
        Error =:= 0 ->
            checked(Fun, Der, Depth, State);
        is_map_key({Depth, Error}, Seen) ->
            {accept, State};
        Error =:= ?UNHANDLED_CRITICAL_EXTENSION ->
            %% The extension events of checked/4 decide.
            {accept, State#{seen := Seen#{{Depth, Error} => true}}};
        Error =:= ?HOSTNAME_MISMATCH; Error =:= ?EMAIL_MISMATCH; Error =:= ?IP_MISMATCH ->
            %% Reported in place of valid_peer.
            {accept, State#{host_failed := true}};
        Error =:= ?UNABLE_TO_GET_ISSUER_CERT; Error =:= ?UNABLE_TO_GET_ISSUER_LOCALLY;
        Error =:= ?SELF_SIGNED_IN_CHAIN; Error =:= ?DEPTH_ZERO_SELF_SIGNED;
        Error =:= ?UNABLE_TO_VERIFY_LEAF_SIGNATURE ->
            Event = case Error of
                        ?DEPTH_ZERO_SELF_SIGNED -> {bad_cert, selfsigned_peer};
                        _ -> {bad_cert, unknown_ca}
                    end,
            call(Fun, Der, Event, anchor, State#{anchor := Depth, seen := Seen#{{Depth, Error} => true}});
        Reason =:= revoked; Reason =:= revocation_status_undetermined ->
            %% OTP checks revocation once the certificate is otherwise valid.
            #{deferred := Deferred} = State,
            Event = {bad_cert, revocation_event(Reason, CrlReason)},
            {accept, State#{deferred := Deferred#{Depth => Event},
                            seen := Seen#{{Depth, Error} => true}}};
        true ->
            call(Fun, Der, {bad_cert, Reason}, path, State#{seen := Seen#{{Depth, Error} => true}})
    end.

%% A certificate below the anchor passed OpenSSL's checks (or the fun
%% accepted its errors): valid / valid_peer, then revocation problems.
checked(Fun, Der, Depth, State0) ->
    case extensions(Fun, Der, State0) of
        {accept, State} -> checked_path(Fun, Der, Depth, State);
        Failed -> Failed
    end.

%% The {extension, _} events of one certificate, as OTP's
%% pubkey_cert:validate_extensions/7 and ssl_certificate:validate/3 give
%% them to the fun.
extensions(Fun, Der, State) ->
    #'OTPCertificate'{tbsCertificate = Tbs} = public_key:pkix_decode_cert(Der, otp),
    Exts = case Tbs#'OTPTBSCertificate'.extensions of
               asn1_NOVALUE -> [];
               List -> List
           end,
    lists:foldl(fun(Ext, {accept, S}) -> call(Fun, Der, {extension, Ext}, path, S);
                   (_, Failed) -> Failed
                end, {accept, State}, [E || E <- Exts, not otp_handles(E)]).

%% Extensions OTP checks itself (basic constraints, key usage, name
%% constraints, extended key usage, a critical subject alternative name,
%% non-critical policies): every other one is an event.
otp_handles(#'Extension'{extnID = Id}) when Id =:= ?'id-ce-basicConstraints';
                                           Id =:= ?'id-ce-keyUsage';
                                           Id =:= ?'id-ce-nameConstraints';
                                           Id =:= ?'id-ce-extKeyUsage' ->
    true;
otp_handles(#'Extension'{extnID = ?'id-ce-subjectAltName', critical = Critical}) ->
    Critical =:= true;
otp_handles(#'Extension'{extnID = Id, critical = Critical})
  when Id =:= ?'id-ce-certificatePolicies'; Id =:= ?'id-ce-policyConstraints' ->
    Critical =/= true;
otp_handles(_) ->
    false.

checked_path(Fun, Der, Depth, State = #{host_failed := HostFailed0, deferred := Deferred}) ->
    HostFailed = HostFailed0 orelse (Depth =:= 0 andalso not host_matches(Der, State)),
    Event = case Depth of
                0 when HostFailed -> {bad_cert, hostname_check_failed};
                0 -> valid_peer;
                _ -> valid
            end,
    case call(Fun, Der, Event, path, State) of
        {accept, State1} when is_map_key(Depth, Deferred) ->
            call(Fun, Der, maps:get(Depth, Deferred), path,
                 State1#{deferred := maps:remove(Depth, Deferred)});
        Other ->
            Other
    end.

%% customize_hostname_check (rssl_options:hostname_check/2): OTP's check.
host_matches(Der, #{host_check := {hostname, RefIds, Custom}}) ->
    try public_key:pkix_verify_hostname(public_key:pkix_decode_cert(Der, otp), RefIds, Custom)
    catch _:_ -> false
    end;
host_matches(_Der, _State) ->
    true.

call(Fun, Der, Event, Phase, State = #{user := User}) ->
    Result = try
                 Otp = public_key:pkix_decode_cert(Der, otp),
                 case erlang:fun_info(Fun, arity) of
                     {arity, 4} -> Fun(Otp, Der, Event, User);
                     _ -> Fun(Otp, Event, User)
                 end
             catch
                 _:_ -> {fail, Event}
             end,
    case Result of
        {unknown, _} when element(1, Event) =:= extension,
                          (element(2, Event))#'Extension'.critical =:= true ->
            {{fail, code({bad_cert, unknown_critical_extension})}, State};
        {Valid, User1} when Valid =:= valid; Valid =:= valid_peer; Valid =:= unknown ->
            {accept, State#{user := User1}};
        {fail, Why} ->
            {{fail, fail_code(Why, Phase)}, State};
        _ ->
            {{fail, ?APPLICATION_VERIFICATION}, State}
    end.

%% The X509 error whose OpenSSL alert is the one OTP sends for `{fail,
%% Reason}'. Along the path, OTP reads a bare Reason as {bad_cert, Reason};
%% when the chain's anchor is in question it takes Reason as it is.
fail_code({bad_cert, _} = Reason, _) -> code(Reason);
fail_code(Reason, path) -> code({bad_cert, Reason});
fail_code(_Reason, anchor) -> ?APPLICATION_VERIFICATION.

code({bad_cert, cert_expired}) -> ?CERT_HAS_EXPIRED;
code({bad_cert, unknown_ca}) -> ?UNABLE_TO_GET_ISSUER_LOCALLY;
code({bad_cert, {revoked, _}}) -> ?CERT_REVOKED;
code({bad_cert, unknown_critical_extension}) -> ?INVALID_PURPOSE;
code({bad_cert, {revocation_status_undetermined, _}}) -> ?CERT_REJECTED;
code({bad_cert, R}) when R =:= invalid_issuer; R =:= invalid_signature;
                         R =:= name_not_permitted; R =:= selfsigned_peer ->
    ?CERT_REJECTED;
code(_) -> ?APPLICATION_VERIFICATION.

revocation_event(revoked, CrlReason) -> {revoked, crl_reason(CrlReason)};
revocation_event(_, _) -> {revocation_status_undetermined, {bad_crls, no_relevant_crls}}.

%% RFC 5280 CRLReason, named as public_key names them.
crl_reason(1) -> keyCompromise;
crl_reason(2) -> cACompromise;
crl_reason(3) -> affiliationChanged;
crl_reason(4) -> superseded;
crl_reason(5) -> cessationOfOperation;
crl_reason(6) -> certificateHold;
crl_reason(8) -> removeFromCRL;
crl_reason(9) -> privilegeWithdrawn;
crl_reason(10) -> aACompromise;
crl_reason(_) -> unspecified.

%% @doc `partial_chain': the fun gets the chain from its topmost
%% certificate down to the peer's (OTP's path order); the NIF wants the
%% index of the chosen anchor in the chain as sent (peer first).
-spec partial_chain([public_key:der_encoded()], fun()) -> {trusted, non_neg_integer()} | unknown_ca.
partial_chain(Chain, Fun) ->
    try Fun(lists:reverse(Chain)) of
        {trusted_ca, Der} ->
            case index_of(Der, Chain, 0) of
                undefined -> unknown_ca;
                I -> {trusted, I}
            end;
        _ ->
            unknown_ca
    catch
        _:_ -> unknown_ca
    end.

index_of(_, [], _) -> undefined;
index_of(X, [X | _], I) -> I;
index_of(X, [_ | Rest], I) -> index_of(X, Rest, I + 1).
