#!/usr/bin/env bash
# Starts the SSH host of the test rig the way an EC2 host comes up:
#  1. the authorized key of `admin` from AUTHORIZED_KEY (one OpenSSH public key line) or from a
#     file mounted at /run/rig/authorized_keys;
#  2. scripts/install-docker.sh again (it finds everything installed and starts dockerd, as
#     cloud-init runs the user-data);
#  3. REGISTRY_FORWARD=<port>:<host>:<hostport> (optional): a socat forwarder so that
#     127.0.0.1:<port> inside this host reaches the rig registry; the images are named
#     127.0.0.1:<port>/... on the test machine and here alike, and Docker allows plain HTTP to
#     127.0.0.0/8;
#  4. REGISTRY_TLS_FORWARD=<host>:<hostport> (optional): 127.0.0.2:443 inside this host, with a
#     self-signed certificate, reaches the rig registry too. A registry name mapped to 127.0.0.2
#     with --add-host (the rig's stand-in for the ECR registry name, which has no port) is then
#     answered where Docker tries first, HTTPS on 443; Docker does not check the certificate of a
#     registry on a loopback address. Ports 80 and 443 of all addresses belong to MyMDB's front,
#     so nothing may listen on 443: the TLS forwarder listens on 127.0.0.1:4443, and a NAT rule
#     sends 127.0.0.2:443 there.
#  5. sshd in the foreground; with BOOT_ON_HOST_KEY=1 it stands in for the EC2 instances the
#     deploy launches: sshd runs only while /run/rig/booted exists, with the host key written to
#     /etc/ssh/ssh_host_ed25519_key (the rig installs the key an instance's user-data carries, as
#     cloud-init does before sshd first starts; tests/rig/sshhost.ts followInstances).
set -o errexit -o nounset -o pipefail

log() { echo "sshhost: $*" >&2; }

keys=/home/admin/.ssh/authorized_keys
install -d -m 0700 -o admin -g admin /home/admin/.ssh
if [ -n "${AUTHORIZED_KEY:-}" ]; then
  printf '%s\n' "$AUTHORIZED_KEY" >"$keys"
elif [ -f /run/rig/authorized_keys ]; then
  cp /run/rig/authorized_keys "$keys"
else
  log "no AUTHORIZED_KEY and no /run/rig/authorized_keys: nobody can log in"
  exit 1
fi
chown admin:admin "$keys"
chmod 0600 "$keys"

ssh-keygen -A >/dev/null
install -d -m 0755 /run/sshd

if [ -n "${REGISTRY_FORWARD:-}" ]; then
  IFS=: read -r listen target target_port <<<"$REGISTRY_FORWARD"
  log "forwarding 127.0.0.1:$listen to $target:$target_port"
  socat "TCP-LISTEN:$listen,bind=127.0.0.1,fork,reuseaddr" "TCP:$target:$target_port" &
fi

if [ -n "${REGISTRY_TLS_FORWARD:-}" ]; then
  IFS=: read -r target target_port <<<"$REGISTRY_TLS_FORWARD"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mymdb-rig-registry -days 7 \
    -keyout /run/rig-registry.key -out /run/rig-registry.crt 2>/dev/null
  log "forwarding 127.0.0.2:443 (TLS) to $target:$target_port"
  socat "OPENSSL-LISTEN:4443,bind=127.0.0.1,fork,reuseaddr,cert=/run/rig-registry.crt,key=/run/rig-registry.key,verify=0" \
    "TCP:$target:$target_port" &
  iptables -t nat -A OUTPUT -p tcp -d 127.0.0.2 --dport 443 -j DNAT --to-destination 127.0.0.1:4443
fi

/usr/local/sbin/install-docker.sh admin

if [ -z "${BOOT_ON_HOST_KEY:-}" ]; then
  log "sshd listening on port 22"
  exec /usr/sbin/sshd -D -e
fi
log "sshd starts when an instance boots (/run/rig/booted)"
# Checked once a second: a check is a fork and a `sleep` (about 10 ms of CPU here, measured; five a
# second cost 26 CPU-seconds in one run of deploy.test), and an instance takes longer to boot.
while :; do
  while [ ! -f /run/rig/booted ]; do sleep 1; done
  /usr/sbin/sshd -D -e &
  sshd=$!
  log "instance booted: sshd listening on port 22"
  while [ -f /run/rig/booted ] && kill -0 "$sshd" 2>/dev/null; do sleep 1; done
  kill "$sshd" 2>/dev/null || true
  wait "$sshd" || true
  log "instance down: sshd stopped"
done
