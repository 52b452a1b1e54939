#!/bin/sh
# scripts/install-deps.sh - install the Debian 12 packages Postern needs to build, test and bench.
# Also creates the system user `postern` (server.user in the default config).
# clang + libclang-rt-14-dev (libclang_rt.fuzzer-x86_64.a, the libFuzzer runtime) + llvm-14
# (llvm-symbolizer, for stack traces) are for the fuzz targets (fuzz/run.sh).
# libidn2-dev: U-label domains to A-labels (IDNA2008, src/smtp/address.cpp).
# libpsl-dev + publicsuffix: the Public Suffix List (src/config/public_suffix.cpp; libpsl reads
# the package's list when it is newer than its built-in copy).
# libnet-ssleay-perl: swaks --tls (only recommended by swaks, and recommends are not installed).
# python3-pytest-xdist: the end-to-end tests run in several worker processes (Makefile E2E_WORKERS).
# Idempotent: exits at once when every package is installed and the user exists. Needs root (or sudo).
set -eu
PKGS="build-essential cmake pkg-config ninja-build
      libssl-dev libasio-dev libunbound-dev libtomlplusplus-dev libcli11-dev libfmt-dev libidn2-dev libpsl-dev publicsuffix
      libgtest-dev libgmock-dev libbenchmark-dev
      python3 python3-pytest python3-pytest-xdist openssl swaks libnet-ssleay-perl postfix procps iproute2 nsd
      clang libclang-rt-14-dev llvm-14"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
# The unprivileged user `postern serve` runs as once started as root (server.user in the
# default config written by `postern init`).
if ! getent passwd postern >/dev/null; then
    $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postern
fi
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# postfix asks a debconf question on install; answer "No configuration" so it stays idle.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
# Packages such as nsd and postfix would start their distro service (port 53 / 25) on
# install; tests start their own instances on high ports, so block service starts while
# installing (policy-rc.d exit 101 = "action forbidden").
restore=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    restore=1
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
[ -n "$restore" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
