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
         make_nodes/2, make_flawed/2]).

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

%% Flawed server certificates for the verification suite, each for
%% DNS:localhost and IP:127.0.0.1 and issued below Pki's `ca' unless said
%% otherwise (a chain's `cert' file holds the leaf then its intermediates):
%%   not_yet_valid  valid from 2090
%%   expired        valid in 2020 only
%%   wrong_purpose  extendedKeyUsage clientAuth only
%%   critical_ext   an unknown critical extension
%%   ca_false_chain issued by a CA:FALSE certificate
%%   pathlen_chain  two CAs below an intermediate with pathlen:0
%%   missing_intermediate  pathlen_chain's leaf alone
%%   anchored_chain one CA below pathlen0_ca, a root with pathlen:0 (OTP
%%                  does not apply a trust anchor's own constraint)
%%   pathlen0_ca    that root
%% Returns Pki with these added.
-spec make_flawed(file:filename(), #{atom() => #{cert := string(), key := string()}}) ->
          #{atom() => #{cert := string(), key := string()}}.
make_flawed(Dir0, Pki = #{ca := Ca}) ->
    Tag = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(Dir0, "flawed-" ++ Tag),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    San = "DNS:localhost,IP:127.0.0.1",
    CaExt = fun(Constraint) -> ["basicConstraints = critical,CA:TRUE", Constraint, "\n"
                                "keyUsage = critical,keyCertSign,cRLSign\n"
                                "subjectKeyIdentifier = hash\n"] end,
    NonCa = leaf(Dir, "non_ca", ?EC_KEY, Ca, "rssl CA:FALSE issuer " ++ Tag,
                 "basicConstraints = critical,CA:FALSE\n"
                 "keyUsage = critical,digitalSignature,keyCertSign\n"
                 "subjectKeyIdentifier = hash\n"),
    Pathlen0 = leaf(Dir, "pathlen0", ?EC_KEY, Ca, "rssl pathlen 0 " ++ Tag, CaExt(",pathlen:0")),
    BelowPathlen0 = leaf(Dir, "below_pathlen0", ?EC_KEY, Pathlen0, "rssl below pathlen 0 " ++ Tag, CaExt("")),
    Pathlen0Ca = self_signed(Dir, "pathlen0_ca", "rssl pathlen 0 root " ++ Tag, CaExt(",pathlen:0")),
    Anchored = leaf(Dir, "anchored", ?EC_KEY, Pathlen0Ca, "rssl below pathlen 0 root " ++ Tag, CaExt("")),
    PathlenLeaf = leaf(Dir, "pathlen_leaf", ?EC_KEY, BelowPathlen0, "localhost", server_ext(San)),
    Pki#{not_yet_valid => dated_leaf(Dir, "not_yet_valid", Ca, "20900101000000Z", "20910101000000Z", server_ext(San)),
         expired => dated_leaf(Dir, "expired", Ca, "20200101000000Z", "20210101000000Z", server_ext(San)),
         wrong_purpose => leaf(Dir, "wrong_purpose", ?EC_KEY, Ca, "localhost",
                               ["basicConstraints = critical,CA:FALSE\n"
                                "keyUsage = critical,digitalSignature\n"
                                "extendedKeyUsage = clientAuth\n"
                                "subjectAltName = ", San, "\n"]),
         critical_ext => leaf(Dir, "critical_ext", ?EC_KEY, Ca, "localhost",
                              [server_ext(San), "1.3.6.1.4.1.55555.1 = critical,ASN1:UTF8String:rssl\n"]),
         ca_false_chain => chain(Dir, "ca_false_chain", leaf(Dir, "below_non_ca", ?EC_KEY, NonCa, "localhost", server_ext(San)), [NonCa]),
         pathlen_chain => chain(Dir, "pathlen_chain", PathlenLeaf, [BelowPathlen0, Pathlen0]),
         missing_intermediate => PathlenLeaf,
         anchored_chain => chain(Dir, "anchored_chain",
                                 leaf(Dir, "anchored_leaf", ?EC_KEY, Anchored, "localhost", server_ext(San)),
                                 [Anchored]),
         pathlen0_ca => Pathlen0Ca}.

%% A leaf valid from NotBefore to NotAfter (YYYYMMDDHHMMSSZ), which `openssl
%% x509' cannot set: signed with `openssl ca'.
dated_leaf(Dir, Name, #{cert := CaCert, key := CaKey}, NotBefore, NotAfter, Ext) ->
    Key = filename:join(Dir, Name ++ "_key.pem"),
    Cert = filename:join(Dir, Name ++ ".pem"),
    Csr = filename:join(Dir, Name ++ ".csr"),
    Cnf = filename:join(Dir, Name ++ ".cnf"),
    Db = filename:join(Dir, Name ++ "_db"),
    ok = filelib:ensure_dir(filename:join(Db, "x")),
    ok = file:write_file(filename:join(Db, "index.txt"), ""),
    ok = file:write_file(filename:join(Db, "serial"), "1000\n"),
    ok = file:write_file(Cnf, [req_cnf("localhost"), "[ext]\n", Ext,
                               "[ca]\ndefault_ca = c\n[c]\n"
                               "database = ", Db, "/index.txt\nserial = ", Db, "/serial\n"
                               "new_certs_dir = ", Db, "\ndefault_md = sha256\npolicy = p\n"
                               "unique_subject = no\n[p]\ncommonName = supplied\n"]),
    openssl([?EC_KEY, " -out ", q(Key)], Key),
    openssl(["req -new -sha256 -config ", q(Cnf), " -key ", q(Key), " -out ", q(Csr)], Csr),
    openssl(["ca -batch -notext -config ", q(Cnf), " -cert ", q(CaCert), " -keyfile ", q(CaKey),
             " -in ", q(Csr), " -out ", q(Cert), " -startdate ", NotBefore, " -enddate ", NotAfter,
             " -extfile ", q(Cnf), " -extensions ext"], Cert),
    #{cert => Cert, key => Key}.

%% Leaf's key with a file holding Leaf's certificate then the Issuers'.
chain(Dir, Name, #{cert := LeafCert, key := Key}, Issuers) ->
    Cert = filename:join(Dir, Name ++ ".pem"),
    Pems = [begin {ok, B} = file:read_file(F), B end || #{cert := F} <- [#{cert => LeafCert} | Issuers]],
    ok = file:write_file(Cert, Pems),
    #{cert => Cert, key => Key}.

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
