#!/bin/sh
# Starts the rig's ACME CA:
#  1. a CA and a certificate for pebble's own HTTPS API (/run/pebble/api-ca.pem is the root the
#     ACME client must trust: MYMDB_ACME_CA_ROOT), for this container's name and address;
#  2. pebble-challtestsrv as a DNS server on :8053 (UDP and TCP) that answers only the A records
#     added through its management API on :8055 (POST /add-a); nothing else resolves;
#  3. pebble on :14000 (directory https://<address>:14000/dir) and :15000 (management: the root
#     that signs issued certificates is /roots/0). PEBBLE_CERT_VALIDITY=<seconds> sets the
#     lifetime of issued certificates (renewals in a test). Names are checked (HTTP-01, port 80)
#     at the addresses this container's /etc/hosts gives them (docker run --add-host).
set -eu

log() { echo "pebble-rig: $*" >&2; }

dir=/run/pebble
mkdir -p "$dir"
name=$(hostname)
ip=$(hostname -i | cut -d' ' -f1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout "$dir/api-ca.key" -out "$dir/api-ca.pem" -subj '/CN=MyMDB rig pebble API CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$dir/api-key.pem" -out "$dir/api.csr" -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name,DNS:localhost,IP:$ip,IP:127.0.0.1" 2>/dev/null
openssl x509 -req -in "$dir/api.csr" -CA "$dir/api-ca.pem" -CAkey "$dir/api-ca.key" -CAcreateserial \
  -days 30 -copy_extensions copyall -out "$dir/api-cert.pem" 2>/dev/null
rm -f "$dir/api.csr" "$dir/api-ca.srl"

config=/etc/pebble/pebble-config.json
if [ -n "${PEBBLE_CERT_VALIDITY:-}" ]; then
  sed "s/\"certificateValidityPeriod\": *[0-9]*/\"certificateValidityPeriod\": $PEBBLE_CERT_VALIDITY/" "$config" >"$dir/config.json"
  config=$dir/config.json
fi

pebble-challtestsrv -dns01 :8053 -management :8055 -defaultIPv4 '' -defaultIPv6 '' \
  -http01 '' -https01 '' -tlsalpn01 '' -doh '' &
log "ACME directory https://$ip:14000/dir, DNS on :8053"
exec pebble -config "$config"
