#!/usr/bin/env bash
# Prepare this machine as a Gunship control node with a container sandbox (Debian/Ubuntu,
# as root): podman with runc, debootstrap for the test images, nginx and systemd for the
# template tests. Installs only what is missing; safe to run again.
set -euo pipefail

packages=(podman runc netavark aardvark-dns iptables debootstrap nginx-light systemd curl git make)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "host-setup: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "host-setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # The template tests only need the nginx binary; do not leave a server on port 80.
  if systemctl is-system-running >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true
  else pkill -x nginx 2>/dev/null || true; fi
fi

# Podman's default rlimits are refused on some hosts and crun fails on hybrid cgroups:
# run containers with runc and explicit limits (see shared notes in the README).
conf=/etc/containers/containers.conf.d/50-gunship.conf
if [ ! -f "$conf" ] && [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$(dirname "$conf")"
  cat >"$conf" <<'CONF'
# Written by Gunship's scripts/host-setup.sh.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
CONF
  echo "host-setup: wrote $conf"
fi
