#!/bin/sh
# Makes the test PKI in $1 (run by ctest before the tests, never committed):
#   ca.pem              test CA
#   server.pem/.key     "localhost" and 127.0.0.1, signed by the CA (+ .der forms)
#   client.pem/.key     a client certificate signed by the CA (+ .der)
#   other_ca.pem        an unrelated CA
#   other_client.pem/.key  a client certificate signed by the unrelated CA
#   server_enc.key      server.key encrypted with the password "secret"
#   garbage.pem         not a certificate
#   server_chain.pem    server.pem followed by ca.pem
#   other_server.pem/.key  "localhost" signed by the unrelated CA (SNI tests)
#   revoked_server.pem/.key, revoked_client.pem/.key  signed by the CA, revoked
#   ca_empty.crl        the CA's CRL revoking nothing
#   ca_revoked.crl      the CA's CRL revoking the two revoked_* certificates (+ .der)
#   crl_hash_dir/       ca_revoked.crl as <issuer hash>.r0
#   server_rsa.pem/.key an RSA "localhost" certificate (DHE-RSA suites) (+ .der)
#   dh.pem              DH parameters (ffdhe3072: not what OpenSSL picks by itself)
#   inter_ca.pem/.key   an intermediate CA signed by the CA
#   chain_server.pem/.key  "localhost" signed by the intermediate; the .pem
#                       holds the intermediate too
set -eu
dir=$1
openssl=${OPENSSL:-openssl}
mkdir -p "$dir"
cd "$dir"

ec_key() {
  "$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

ca() { # name subject
  ec_key "$1.key"
  "$openssl" req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}

leaf() { # name subject ca extensions
  ec_key "$1.key"
  "$openssl" req -new -key "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$4" > "$1.ext"
  "$openssl" x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=rssl test CA"
ca other_ca "/CN=rssl unrelated CA"
leaf server "/CN=localhost" ca \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "/CN=rssl test client" ca "extendedKeyUsage=clientAuth"
leaf other_client "/CN=rssl stranger" other_ca "extendedKeyUsage=clientAuth"

"$openssl" x509 -in server.pem -outform DER -out server.der
"$openssl" x509 -in client.pem -outform DER -out client.der
"$openssl" x509 -in ca.pem -outform DER -out ca.der
"$openssl" pkcs8 -topk8 -nocrypt -in server.key -outform DER -out server.key.der
"$openssl" pkey -in server.key -aes256 -passout pass:secret -out server_enc.key
echo "this is not a certificate" > garbage.pem
cat server.pem ca.pem > server_chain.pem
leaf other_server "/CN=localhost" other_ca \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf revoked_server "/CN=localhost" ca \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf revoked_client "/CN=rssl revoked client" ca "extendedKeyUsage=clientAuth"

mkdir -p crl_db
: > crl_db/index.txt
echo 01 > crl_db/crlnumber
cat > crl.cnf <<'EOF'
[ca]
default_ca = test
[test]
database = crl_db/index.txt
crlnumber = crl_db/crlnumber
default_md = sha256
default_crl_days = 2
EOF
ec_key inter_ca.key
"$openssl" req -new -key inter_ca.key -out inter_ca.csr -subj "/CN=rssl intermediate CA"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > inter_ca.ext
"$openssl" x509 -req -in inter_ca.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out inter_ca.pem -days 2 -extfile inter_ca.ext 2>/dev/null
rm -f inter_ca.csr inter_ca.ext
leaf chain_leaf "/CN=localhost" inter_ca \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
cat chain_leaf.pem inter_ca.pem > chain_server.pem
mv chain_leaf.key chain_server.key
"$openssl" x509 -in inter_ca.pem -outform DER -out inter_ca.der

crl() { "$openssl" ca -config crl.cnf -keyfile ca.key -cert ca.pem "$@" 2>/dev/null; }
crl -gencrl -out ca_empty.crl
crl -revoke revoked_server.pem
crl -revoke revoked_client.pem
crl -gencrl -out ca_revoked.crl
"$openssl" crl -in ca_revoked.crl -outform DER -out ca_revoked.crl.der
# The revoking CRL in a hashed directory (as `openssl rehash` names it).
mkdir -p crl_hash_dir
cp ca_revoked.crl "crl_hash_dir/$("$openssl" crl -hash -noout -in ca_revoked.crl).r0"

"$openssl" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server_rsa.key 2>/dev/null
"$openssl" req -new -key server_rsa.key -out server_rsa.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server_rsa.ext
"$openssl" x509 -req -in server_rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out server_rsa.pem -days 2 -extfile server_rsa.ext 2>/dev/null
rm -f server_rsa.csr server_rsa.ext
"$openssl" x509 -in server_rsa.pem -outform DER -out server_rsa.der
"$openssl" genpkey -genparam -algorithm DH -pkeyopt group:ffdhe3072 -out dh.pem
echo "certificates in $dir"
