#!/bin/sh
# Regenerates the TLS fixtures of tests/smtp_tls.rs in tests/fixtures/tls/:
# a test CA (ca.pem) and two server certificates it signs, localhost.pem for
# localhost and 127.0.0.1 and wrong-host.pem for another name, each with its
# key. All are valid from 2000-01-01 to 2126-01-01, so the committed files
# need no renewal and a clock set a little wrong does not fail the tests. The
# CA's key is thrown away: nothing else can ever be signed by it.
#
#   sh scripts/test_certs.sh    (needs openssl 1.1.1 or later)
set -eu
out="$(dirname "$0")/../tests/fixtures/tls"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
touch "$work/index.txt"
cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[localhost]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[wrong-host]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:relay.example.net
CNF
echo 01 >"$work/serial"

# sign NAME EXTENSIONS SIGNER...: NAME.pem from a new key and request.
sign() {
  name=$1 extensions=$2
  shift 2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/$name.key" -out "$work/$name.csr" -subj "/CN=$name"
  openssl ca -batch -config "$work/ca.cnf" -notext -extensions "$extensions" \
    -startdate 20000101000000Z -enddate 21260101000000Z \
    -in "$work/$name.csr" -out "$out/$name.pem" "$@"
}
sign "shorts test CA" ca_ext -selfsign -keyfile "$work/shorts test CA.key"
mv "$out/shorts test CA.pem" "$out/ca.pem"
for name in localhost wrong-host; do
  sign "$name" "$name" -cert "$out/ca.pem" -keyfile "$work/shorts test CA.key"
  mv "$work/$name.key" "$out/$name.key"
done
