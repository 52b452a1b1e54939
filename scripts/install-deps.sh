#!/bin/sh
# scripts/install-deps.sh - install the Debian 12 packages Postern needs to build, test and bench.
# Idempotent: exits at once when every package is already installed. Needs root (or sudo).
set -eu
PKGS="build-essential cmake pkg-config ninja-build
      libssl-dev libasio-dev libunbound-dev libtomlplusplus-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      python3 python3-pytest openssl swaks postfix procps iproute2 nsd"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# postfix asks a debconf question on install; answer "No configuration" so it stays idle.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
