#!/usr/bin/env bash
# Start the sandbox host of inventories/local (a Debian 12 systemd container), deploy the
# example app onto it, and print where it answers through Nginx.
set -euo pipefail
cd "$(dirname "$0")/.."

name=gunship-demo
port="${GUNSHIP_DEMO_PORT:-8080}"
image=localhost/gunship-debian:bookworm

scripts/build-test-image.sh bookworm

# Reused only if it answers: podman can still call a container running after its init died
# (the host slept or was restarted), and then every exec into it fails.
if ! podman exec "$name" true >/dev/null 2>&1; then
  podman rm -f "$name" >/dev/null 2>&1 || true
  echo "demo: starting $name, Nginx published on 127.0.0.1:$port"
  # Privileged: the app's systemd sandbox (namespaces) needs it inside a container.
  podman run -d --name "$name" --hostname "$name" --systemd=always --privileged \
    --publish "127.0.0.1:$port:80" "$image" /lib/systemd/systemd >/dev/null
fi

for _ in $(seq 60); do
  state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done

.venv/bin/ansible-playbook playbooks/deploy.yml -i inventories/local \
  --vault-password-file inventories/local/vault-password.txt "$@"

url="http://127.0.0.1:$port/"
curl --fail --silent --show-error --max-time 10 "$url" >/dev/null
echo
echo "demo: the example app answers through Nginx at $url"
echo "demo: stop it with: podman rm -f $name"
