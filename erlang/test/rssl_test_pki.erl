%% Test certificates for the rssl Common Test suites, made with the
%% `openssl` command line tool so that neither `ssl` nor `rssl` (the code
%% under test) takes part in producing them.
%%
%% make(Dir) writes into a fresh subdirectory of Dir:
%%   ca            the test CA
%%   server        leaf for DNS:localhost and IP:127.0.0.1, signed by ca
%%   client        client-auth leaf, signed by ca
%%   wrong_host    server leaf for DNS:wrong.example only, signed by ca
%%   wildcard      server leaf for DNS:*.wild.example only, signed by ca
%%   rsa_server    RSA 2048 leaf for localhost/127.0.0.1, signed by ca
%%   other_ca      an unrelated CA (it signs only other_server)
%%   other_server  server leaf for localhost signed by other_ca
%% and returns a map Name => #{cert => Path, key => Path}. All keys are
%% ECDSA P-256 except rsa_server's.
-module(rssl_test_pki).

-export([make/1, server_opts/1, server_opts/2, client_opts/1, client_opts/2, der/1,
         make_nodes/2]).

-define(EC_KEY, "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256").
-define(RSA_KEY, "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048").

%% Returns #{ca := #{cert, key}, server := ..., client := ..., ...}.
-spec make(file:filename()) -> #{atom() => #{cert := string(), key := string()}}.
make(Dir0) ->
    %% A fresh directory and CA names each time: suites of one run share
    %% priv_dir, and ssl caches PEM files by path and CAs by name VM-wide.
    Tag = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(Dir0, "pki-" ++ Tag),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Ca = ca(Dir, "ca", "rssl test CA " ++ Tag),
    OtherCa = ca(Dir, "other_ca", "rssl unrelated CA " ++ Tag),
    #{ca => Ca,
      other_ca => OtherCa,
      server => leaf(Dir, "server", ?EC_KEY, Ca, "localhost", server_ext("DNS:localhost,IP:127.0.0.1")),
      rsa_server => leaf(Dir, "rsa_server", ?RSA_KEY, Ca, "localhost", server_ext("DNS:localhost,IP:127.0.0.1")),
      wrong_host => leaf(Dir, "wrong_host", ?EC_KEY, Ca, "wrong.example", server_ext("DNS:wrong.example")),
      wildcard => leaf(Dir, "wildcard", ?EC_KEY, Ca, "*.wild.example", server_ext("DNS:*.wild.example")),
      other_server => leaf(Dir, "other_server", ?EC_KEY, OtherCa, "localhost", server_ext("DNS:localhost,IP:127.0.0.1")),
      client => leaf(Dir, "client", ?EC_KEY, Ca, "rssl test client", client_ext()),
      self_signed => self_signed(Dir, "self_signed", "localhost",
                                 "basicConstraints = critical,CA:FALSE\n"
                                 "keyUsage = critical,digitalSignature,keyEncipherment\n"
                                 "extendedKeyUsage = serverAuth\n"
                                 "subjectAltName = DNS:localhost,IP:127.0.0.1\n")}.

%% Certificates for Erlang distribution nodes (each end is a TLS server and
%% client): `node' for the given host names and the loopback addresses,
%% serverAuth and clientAuth, signed by `ca'; `other_node' the same signed
%% by `other_ca'; `wrong_host_node' (DNS:wrong.example only) signed by `ca'.
%% Returns #{ca, other_ca, node, other_node, wrong_host_node}.
-spec make_nodes(file:filename(), [string()]) -> #{atom() => #{cert := string(), key := string()}}.
make_nodes(Dir0, Hosts) ->
    Tag = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(Dir0, "nodes-" ++ Tag),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Ca = ca(Dir, "ca", "rssl node CA " ++ Tag),
    OtherCa = ca(Dir, "other_ca", "rssl other node CA " ++ Tag),
    San = lists:join(",", ["DNS:" ++ H || H <- Hosts] ++ ["IP:127.0.0.1", "IP:::1"]),
    #{ca => Ca,
      other_ca => OtherCa,
      node => leaf(Dir, "node", ?EC_KEY, Ca, hd(Hosts), node_ext(San)),
      other_node => leaf(Dir, "other_node", ?EC_KEY, OtherCa, hd(Hosts), node_ext(San)),
      wrong_host_node => leaf(Dir, "wrong_host_node", ?EC_KEY, Ca, "wrong.example",
                              node_ext("DNS:wrong.example"))}.

node_ext(San) ->
    ["basicConstraints = critical,CA:FALSE\n"
     "keyUsage = critical,digitalSignature,keyEncipherment\n"
     "extendedKeyUsage = serverAuth,clientAuth\n"
     "subjectKeyIdentifier = hash\n"
     "authorityKeyIdentifier = keyid\n"
     "subjectAltName = ", San, "\n"].

%% Server options for the `server` cert (or the named one), no peer verification.
server_opts(Pki) -> server_opts(Pki, server).
server_opts(Pki, Name) ->
    #{Name := #{cert := Cert, key := Key}} = Pki,
    [{certfile, Cert}, {keyfile, Key}].

%% Client options trusting `ca` (or the named CA) with verify_peer.
client_opts(Pki) -> client_opts(Pki, ca).
client_opts(Pki, CaName) ->
    #{CaName := #{cert := CaCert}} = Pki,
    [{verify, verify_peer}, {cacertfile, CaCert}].

%% DER of the first certificate in a PEM file.
der(PemFile) ->
    {ok, Pem} = file:read_file(PemFile),
    [{'Certificate', Der, not_encrypted} | _] = public_key:pem_decode(Pem),
    Der.

%% --- internals --------------------------------------------------------------

ca(Dir, Name, CN) ->
    self_signed(Dir, Name, CN, "basicConstraints = critical,CA:TRUE\n"
                               "keyUsage = critical,keyCertSign,cRLSign\n"
                               "subjectKeyIdentifier = hash\n").

%% A certificate signed by its own key, with the extensions Ext.
self_signed(Dir, Name, CN, Ext) ->
    Key = filename:join(Dir, Name ++ "_key.pem"),
    Cert = filename:join(Dir, Name ++ ".pem"),
    Cnf = filename:join(Dir, Name ++ ".cnf"),
    ok = file:write_file(Cnf, [req_cnf(CN), "[ext]\n", Ext]),
    openssl([?EC_KEY, " -out ", q(Key)], Key),
    openssl(["req -new -x509 -sha256 -days 3650 -config ", q(Cnf), " -extensions ext",
             " -key ", q(Key), " -out ", q(Cert)], Cert),
    #{cert => Cert, key => Key}.

leaf(Dir, Name, KeyCmd, #{cert := CaCert, key := CaKey}, CN, Ext) ->
    Key = filename:join(Dir, Name ++ "_key.pem"),
    Cert = filename:join(Dir, Name ++ ".pem"),
    Csr = filename:join(Dir, Name ++ ".csr"),
    Cnf = filename:join(Dir, Name ++ ".cnf"),
    ok = file:write_file(Cnf, [req_cnf(CN), "[ext]\n", Ext]),
    openssl([KeyCmd, " -out ", q(Key)], Key),
    openssl(["req -new -sha256 -config ", q(Cnf), " -key ", q(Key), " -out ", q(Csr)], Csr),
    Serial = integer_to_list(erlang:unique_integer([positive]) + 1000 * os:system_time(second)),
    openssl(["x509 -req -sha256 -days 3650 -in ", q(Csr), " -CA ", q(CaCert), " -CAkey ", q(CaKey),
             " -set_serial ", Serial, " -extfile ", q(Cnf), " -extensions ext -out ", q(Cert)], Cert),
    #{cert => Cert, key => Key}.

req_cnf(CN) ->
    ["[req]\n"
     "distinguished_name = dn\n"
     "prompt = no\n"
     "[dn]\n"
     "CN = ", CN, "\n"].

server_ext(San) ->
    ["basicConstraints = critical,CA:FALSE\n"
     "keyUsage = critical,digitalSignature,keyEncipherment\n"
     "extendedKeyUsage = serverAuth\n"
     "subjectKeyIdentifier = hash\n"
     "authorityKeyIdentifier = keyid\n"
     "subjectAltName = ", San, "\n"].

client_ext() ->
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = clientAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n".

%% Runs `openssl Args`; fails loudly (with openssl's output) unless Expect
%% exists afterwards.
openssl(Args, Expect) ->
    _ = file:delete(Expect),
    Out = os:cmd(lists:flatten(["openssl ", Args, " 2>&1"])),
    case filelib:is_regular(Expect) of
        true -> ok;
        false -> error({openssl_failed, lists:flatten(Args), Out})
    end.

q(Path) -> "'" ++ Path ++ "'".
