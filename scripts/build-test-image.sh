#!/usr/bin/env bash
# Build the local Debian test image (systemd + python3) without any container registry:
# debootstrap a minimal rootfs, then `podman import` it. Skipped when the image exists.
#
#   scripts/build-test-image.sh [bookworm|trixie]      -> localhost/gunship-debian:<suite>
#
# GUNSHIP_MIRROR overrides the Debian mirror; GUNSHIP_REBUILD=1 rebuilds an existing image.
set -euo pipefail

suite="${1:-bookworm}"
image="localhost/gunship-debian:${suite}"
mirror="${GUNSHIP_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${GUNSHIP_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

case "$suite" in
  bookworm|trixie) ;;
  *) echo "build-test-image: suite '$suite' is not supported; use bookworm (Debian 12) or trixie (Debian 13)" >&2; exit 2 ;;
esac

if [ "${GUNSHIP_REBUILD:-0}" != 1 ] && podman image exists "$image"; then
  echo "build-test-image: $image exists, nothing to do"
  exit 0
fi

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "build-test-image: '$tool' is not installed (apt-get install $tool)" >&2; exit 2; }
done

rootfs="$(mktemp -d /var/tmp/gunship-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "build-test-image: debootstrap $suite into $rootfs"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,procps,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# A realistic host: updates and security suites next to main.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES

# Units that make no sense in a container and only slow the boot down.
for unit in systemd-remount-fs.service getty.target console-getty.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# No package lists, and a lists directory that looks old: like a cloud image, the first
# `apt-get update` happens on the host, as Ansible's cache_valid_time decides.
find "$rootfs/var/cache/apt/archives" "$rootfs/var/lib/apt/lists" -maxdepth 1 -type f -delete
touch -d @0 "$rootfs/var/lib/apt/lists"

echo "build-test-image: importing $image"
tar -C "$rootfs" --numeric-owner -c . \
  | podman import --change 'CMD ["/lib/systemd/systemd"]' --change STOPSIGNAL=SIGRTMIN+3 - "$image" >/dev/null
echo "build-test-image: built $image"
