#!/bin/sh
# After-remove script of the zcc deb and rpm (electron-builder passes it to fpm as
# --after-remove: the Debian postrm, the RPM %postun). It replaces electron-builder's default
# script, so it also removes the tray app's /usr/bin link and AppArmor profile.
#
# On removal: stops and disables the agent (on SIGTERM the agent restores what it changed in the
# OS: DNS, routes, nftables; the process still runs although its files are gone), removes the
# unit and /usr/bin/zcc. On Debian purge also the agent's sealed state (/var/lib/zcc) and the
# managed configuration directory (/etc/zcc). The group zcc stays: files may still carry its
# gid, and a later install reuses it. RPM has no purge: state and configuration stay.
# On upgrade (Debian "upgrade", RPM 1 or more) nothing: the new version's after-install script
# installs the unit again and restarts the agent.
#
# ZCC_PACKAGING_ROOT=DIR applies it to the tree under DIR instead of the system (the tests do).
# No brace-only variable expansions: see the template note in after-install.sh.
set -eu

ROOT=$(printf '%s' "${ZCC_PACKAGING_ROOT:-}" | sed 's:/*$::')
APP_DIR=/opt/zcc
TRAY=zcc-tray
AGENT=$APP_DIR/resources/agent/zcc-agent
UNIT=zcc-agent.service

say() { echo "zcc: $*"; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

purge=no
case "${1:-}" in
  purge) purge=yes ;;
  remove | abort-install | disappear | 0 | "") ;;
  *) exit 0 ;;
esac

# --- the agent ------------------------------------------------------------------------------
if systemd_running; then
  systemctl disable --now "$UNIT" || say "warning: could not stop $UNIT"
elif command -v systemctl >/dev/null 2>&1; then
  if [ -n "$ROOT" ]; then
    systemctl --root="$ROOT" disable "$UNIT" >/dev/null 2>&1 || true
  else
    systemctl disable "$UNIT" >/dev/null 2>&1 || true
  fi
fi
rm -f "$ROOT/usr/lib/systemd/system/$UNIT" "$ROOT/lib/systemd/system/$UNIT"
if systemd_running; then
  systemctl daemon-reload || true
  systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
fi
if [ -L "$ROOT/usr/bin/zcc" ] && [ "$(readlink "$ROOT/usr/bin/zcc")" = "$AGENT" ]; then
  rm -f "$ROOT/usr/bin/zcc"
fi
if [ "$purge" = yes ]; then
  rm -rf "$ROOT/var/lib/zcc" "$ROOT/etc/zcc"
fi

# --- the tray app (what electron-builder's own after-remove template does) ------------------
if [ -z "$ROOT" ] && command -v update-alternatives >/dev/null 2>&1; then
  update-alternatives --remove "$TRAY" "$APP_DIR/$TRAY" || true
elif [ -L "$ROOT/usr/bin/$TRAY" ]; then
  rm -f "$ROOT/usr/bin/$TRAY"
fi
rm -f "$ROOT/etc/apparmor.d/$TRAY" "$ROOT/etc/xdg/autostart/$TRAY.desktop"
exit 0
