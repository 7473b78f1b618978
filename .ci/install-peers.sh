#!/usr/bin/env bash
# Real third-party SMTP peers used by the interop suite (see ../shared/notes/toolchain.md).
# Installing these Debian packages does not start any daemon here; tests run private
# instances on high loopback ports only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
need=()
for c in swaks msmtp openssl; do command -v "$c" >/dev/null || need+=("$c"); done
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
