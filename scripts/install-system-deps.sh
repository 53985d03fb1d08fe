#!/usr/bin/env bash
# Install the Debian packages camwarden's demo, lab and tests need, only when missing.
# Usage: scripts/install-system-deps.sh [demo|test|deb]
# deb: what `make deb` needs; for armhf, Debian's cross compiler builds the C extensions PyPI
# has no armv7l wheel for against an armhf sysroot made by debootstrap, and qemu-user-static
# imports them once built (docs/adr/0004-debian-packaging.md). No foreign dpkg architecture.
# Each architecture's binutils strip the shared objects; proot runs the opt-in arm64/armhf
# install tests' roots under qemu-user (no binfmt_misc needed). The trixie packages also need a
# CPython 3.13 on the build machine (python3.13 on PATH, or pyenv's), which bookworm does not
# package: this script says so when it is missing.
set -euo pipefail
profile="${1:-test}"

pkgs_demo=(mosquitto mosquitto-clients python3-venv openssl iproute2
           python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
           gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-rtsp fonts-dejavu-core)
pkgs_test=("${pkgs_demo[@]}" nmap ffmpeg curl chromium postgresql postgresql-client
           libsystemd-dev pkg-config python3-systemd debootstrap dpkg-dev fakeroot
           systemd nftables snmp poppler-utils nats-server)
pkgs_deb=(dpkg-dev fakeroot python3-venv debootstrap crossbuild-essential-armhf qemu-user-static
          binutils binutils-aarch64-linux-gnu proot)

case "$profile" in
  demo) want=("${pkgs_demo[@]}") ;;
  test) want=("${pkgs_test[@]}") ;;
  deb) want=("${pkgs_deb[@]}") ;;
  *) echo "usage: $0 [demo|test|deb]" >&2; exit 2 ;;
esac

if [ "$profile" = deb ] && ! command -v python3.13 >/dev/null && ! { command -v pyenv >/dev/null &&
    [ -x "$(pyenv prefix 3.13 2>/dev/null)/bin/python3.13" ]; }; then
  echo "note: the trixie packages need a CPython 3.13 (python3.13 on PATH or pyenv's)" >&2
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2; exit 1; fi
else SUDO=""; fi
echo "installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# policy-rc.d keeps package scripts from starting services: runs start what they need themselves.
pol=/usr/sbin/policy-rc.d; made_pol=0
if [ ! -e "$pol" ]; then printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$pol" >/dev/null; $SUDO chmod +x "$pol"; made_pol=1; fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
[ "$made_pol" -eq 1 ] && $SUDO rm -f "$pol"
exit 0
