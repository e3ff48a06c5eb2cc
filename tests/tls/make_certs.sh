#!/usr/bin/env bash
# Certificates for the TLS tests and the demo, made with the openssl command:
#
#   make_certs.sh DIR
#
# In DIR (made if missing), each NAME.pem with its key NAME.key (EC P-256):
#   ca                  the test CA (its certificate only is needed by peers)
#   other-ca            a second, unrelated CA
#   server              signed by ca: CN=mserv, SAN DNS:localhost,
#                       IP:127.0.0.1, IP:::1 (serverAuth + clientAuth)
#   server-rotated      the same names, another key (a rotation)
#   server-wrong-name   signed by ca, SAN DNS:elsewhere.invalid only
#   server-expired      signed by ca, valid in 2020 only
#   server-future       signed by ca, valid from 2099 on
#   server-other-ca     the server's names, signed by other-ca
#   client              signed by ca: CN=gateway, SAN DNS:gateway
#   client-rotated      signed by ca: CN=gateway-2, SAN DNS:gateway-2
#   intruder            signed by ca: CN=intruder, SAN DNS:intruder
#   client-other-ca     CN=gateway, signed by other-ca
#   client-expired      CN=gateway, signed by ca, valid in 2020 only
# plus, for broker users mapped from certificates, mserv1, mserv2 (CN and DNS
# SAN of that name, signed by ca). Valid 30 days unless said otherwise. Keys
# are readable by their owner only, and by the `rabbitmq` group when it
# exists (a private RabbitMQ node reads its own).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
cd "$dir"
db="ca-db"
rm -rf "$db"
mkdir -p "$db/new"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

make_ca() { # NAME CN
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -sha256 -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  : >"$db/$1.index"
  echo 01 >"$db/$1.serial"
}

# sign NAME CA CN SAN [START END]: a leaf certificate for NAME signed by CA.
sign() {
  local name=$1 ca=$2 cn=$3 san=$4 dates=(-days 30)
  if [[ $# -ge 6 ]]; then dates=(-startdate "$5" -enddate "$6"); fi
  key "$name"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$db/$name.csr"
  cat >"$db/$name.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $db/$ca.index
new_certs_dir = $db/new
serial = $db/$ca.serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $san
CNF
  openssl ca -batch -notext -config "$db/$name.cnf" -extensions leaf -cert "$ca.pem" \
    -keyfile "$ca.key" -in "$db/$name.csr" -out "$name.pem" "${dates[@]}" 2>/dev/null
}

make_ca ca "filemesh test CA"
make_ca other-ca "another CA"
server_names="DNS:localhost, IP:127.0.0.1, IP:::1"
sign server ca mserv "$server_names"
sign server-rotated ca mserv "$server_names"
sign server-wrong-name ca elsewhere "DNS:elsewhere.invalid"
sign server-expired ca mserv "$server_names" 20200101000000Z 20200201000000Z
sign server-future ca mserv "$server_names" 20990101000000Z 20990201000000Z
sign server-other-ca other-ca mserv "$server_names"
sign client ca gateway "DNS:gateway"
sign client-rotated ca gateway-2 "DNS:gateway-2"
sign intruder ca intruder "DNS:intruder"
sign client-other-ca other-ca gateway "DNS:gateway"
sign client-expired ca gateway "DNS:gateway" 20200101000000Z 20200201000000Z
sign mserv1 ca mserv1 "DNS:mserv1, DNS:localhost, IP:127.0.0.1, IP:::1"
sign mserv2 ca mserv2 "DNS:mserv2, DNS:localhost, IP:127.0.0.1, IP:::1"
rm -rf "$db"
chmod 600 ./*.key
if getent group rabbitmq >/dev/null; then
  chgrp rabbitmq ./*.key ./*.pem
  chmod 640 ./*.key
fi
