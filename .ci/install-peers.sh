#!/usr/bin/env bash
# Real third-party SMTP peers used by the interop suite (see docs/explanation/interop.md).
# Idempotent and quick when everything is present (no apt call at all then).
#
# - Debian packages: swaks (with libnet-ssleay-perl for its TLS), msmtp, postfix (smtp-sink, smtp-source, private `postfix -c DIR`
#   instances), python3-aiosmtpd, sasl2-bin (saslpasswd2, for the private postfix's SASL), openssl.
#   Installing them starts no daemon in tests: postfix is preseeded to "No configuration" so no
#   system instance is configured for port 25; tests run private instances on high loopback ports.
# - exim 4.96: `apt-get install exim4` would remove postfix (both provide mail-transport-agent), so
#   the .debs are downloaded and unpacked with `dpkg -x` into $EXIM_ROOT, their libraries installed
#   as ordinary packages, and the compiled-in `Debian-exim` user created.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
EXIM_ROOT=${EXIM_ROOT:-/opt/smtp-edge-peers/exim}
EXIM_BIN="$EXIM_ROOT/usr/sbin/exim4"
# Shared libraries exim4-daemon-light links against (from `apt-cache depends exim4-daemon-light`).
EXIM_LIBS=(libc6 libcrypt1 libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0)

need=()
for c in swaks msmtp openssl; do command -v "$c" >/dev/null || need+=("$c"); done
[ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/postfix ] || need+=(postfix)
[ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so ] || [ -n "$(find /usr/lib -name 'libsasldb.so*' -print -quit 2>/dev/null)" ] || need+=(libsasl2-modules-db)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
# swaks only recommends Net::SSLeay, and --no-install-recommends skips it: without it swaks has no TLS.
perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
for l in "${EXIM_LIBS[@]}"; do dpkg -s "$l" >/dev/null 2>&1 || need+=("$l"); done
exim_ok=1
[ -x "$EXIM_BIN" ] || exim_ok=0

updated=0
apt_update() { [ $updated -eq 1 ] || { $SUDO apt-get update -qq; updated=1; }; }

if [ ${#need[@]} -gt 0 ]; then
  apt_update
  # No system postfix configuration (and so no daemon on port 25) on a fresh machine.
  echo 'postfix postfix/main_mailer_type select No configuration' | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ $exim_ok -eq 0 ]; then
  apt_update
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  getent passwd _apt >/dev/null && $SUDO chown _apt "$tmp"
  (cd "$tmp" && $SUDO apt-get download -qq exim4-daemon-light exim4-base)
  $SUDO mkdir -p "$EXIM_ROOT"
  for deb in "$tmp"/*.deb; do $SUDO dpkg -x "$deb" "$EXIM_ROOT"; done
  rm -rf "$tmp"
fi

# exim's binary has the user Debian-exim compiled in; exim4-base's postinst would create it.
getent group Debian-exim >/dev/null || $SUDO groupadd --system Debian-exim
getent passwd Debian-exim >/dev/null ||
  $SUDO useradd --system --gid Debian-exim --no-create-home --home-dir /var/spool/exim4 \
    --shell /usr/sbin/nologin Debian-exim

"$EXIM_BIN" -bV -C /dev/null 2>/dev/null | head -1 || { echo "exim in $EXIM_ROOT does not run"; exit 1; }
echo "peers ready: swaks msmtp postfix(smtp-sink,smtp-source) sasl2-bin python3-aiosmtpd exim($EXIM_BIN)"
