#!/usr/bin/env bash
# Make a CA and certificates for a Warden cluster with openssl: one CA for the client port
# (server certificates clients check), one CA for the peer port (each member's certificate,
# which the others check: mutual TLS), each member's certificates naming it (DNS:<name>) and
# its addresses (--hosts). For a test or a first cluster; keep ca.key offline in production.
#
#   deploy/tls/make-certs.sh OUT_DIR n1 n2 n3 [--hosts 127.0.0.1,10.0.0.1,...] [--days 365]
#
# Writes OUT_DIR/{client-ca,peer-ca}.{pem,key} and OUT_DIR/<name>/{client,peer}.{pem,key}.
set -euo pipefail
out=${1:?usage: make-certs.sh OUT_DIR NAME... [--hosts H1,H2] [--days N]}
shift
names=()
hosts="127.0.0.1,localhost"
days=365
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) hosts=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || { echo "make-certs.sh: name at least one member" >&2; exit 2; }
mkdir -p "$out"
umask 077

ca() { # ca NAME: a self-signed CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=warden $1 CA" -keyout "$out/$1.key" -out "$out/$1.pem" 2>/dev/null
}

san_for() { # san_for NAME: DNS:NAME plus every host as IP or DNS
  local san="DNS:$1" h
  IFS=, read -ra list <<< "$hosts"
  for h in "${list[@]}"; do
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
  done
  echo "$san"
}

cert() { # cert CA NAME FILE USAGE: a certificate for NAME signed by CA
  local dir="$out/$2" ext
  mkdir -p "$dir"
  ext=$(mktemp)
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$(san_for "$2")" "$4" > "$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$dir/$3.key" -out "$dir/$3.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$3.csr" -CA "$out/$1.pem" -CAkey "$out/$1.key" -CAcreateserial \
    -days "$days" -extfile "$ext" -out "$dir/$3.pem" 2>/dev/null
  rm -f "$dir/$3.csr" "$ext"
}

[ -f "$out/client-ca.pem" ] || ca client-ca
[ -f "$out/peer-ca.pem" ] || ca peer-ca
for name in "${names[@]}"; do
  cert client-ca "$name" client serverAuth
  # A member both accepts and dials peers: its peer certificate serves both ends.
  cert peer-ca "$name" peer serverAuth,clientAuth
done
echo "certificates for ${names[*]} in $out"
