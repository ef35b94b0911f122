#!/bin/sh
# After-install script of the zcc deb and rpm (electron-builder passes it to fpm as
# --after-install: the Debian postinst, the RPM %post). It replaces electron-builder's default
# script, so it first does that script's work for the tray app (/usr/bin link, chrome-sandbox
# mode, desktop database, AppArmor profile), then registers the agent as a system service:
#   - /usr/bin/zcc -> the agent's own Node runtime (a single-executable application), which the
#     systemd unit runs;
#   - the unit into /usr/lib/systemd/system (/lib/systemd/system where only that exists), 0644;
#   - the system group zcc: its members may change settings through the agent's local API;
#   - the tray app's XDG autostart entry in /etc/xdg/autostart, so it starts at login;
#   - systemctl daemon-reload && systemctl enable --now zcc-agent when systemd is running;
#     otherwise (chroot, image build, container) only the offline `systemctl enable`.
#
# Arguments: Debian "configure [old-version]", RPM "<installed versions>" (2 or more: upgrade).
#
# ZCC_PACKAGING_ROOT=DIR applies it to the tree under DIR instead of the system (the tests do):
# nothing outside DIR is touched, no service is started, groupadd and systemctl get DIR as root.
#
# electron-builder runs this file through its template engine, where a dollar sign followed by
# a name of letters only in braces is a macro (an unknown one fails the build): no shell
# variable here is written that way.
set -eu

ROOT=$(printf '%s' "${ZCC_PACKAGING_ROOT:-}" | sed 's:/*$::')
APP_DIR=/opt/zcc                      # electron-builder installs to /opt/<productName>
TRAY=zcc-tray                         # executableName in electron-builder.yml
AGENT=$APP_DIR/resources/agent/zcc-agent
UNIT=zcc-agent.service
UNIT_SRC=$APP_DIR/resources/systemd/$UNIT
GROUP=zcc

say() { echo "zcc: $*"; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

upgrade=no
case "${1:-}" in
  configure) if [ -n "${2:-}" ]; then upgrade=yes; fi ;;
  [0-9]*) if [ "$1" -ge 2 ]; then upgrade=yes; fi ;;
esac

# --- the tray app (what electron-builder's own after-install template does) -----------------
mkdir -p "$ROOT/usr/bin"
if [ -z "$ROOT" ] && command -v update-alternatives >/dev/null 2>&1; then
  if [ -L "/usr/bin/$TRAY" ] && [ -e "/usr/bin/$TRAY" ] && [ "$(readlink "/usr/bin/$TRAY")" != "/etc/alternatives/$TRAY" ]; then
    rm -f "/usr/bin/$TRAY"
  fi
  update-alternatives --install "/usr/bin/$TRAY" "$TRAY" "$APP_DIR/$TRAY" 100 || ln -sf "$APP_DIR/$TRAY" "/usr/bin/$TRAY"
else
  ln -sf "$APP_DIR/$TRAY" "$ROOT/usr/bin/$TRAY"
fi

if [ -f "$ROOT$APP_DIR/chrome-sandbox" ]; then
  # The setuid sandbox only where unprivileged user namespaces do not work.
  if [ -L /proc/self/ns/user ] && unshare --user true 2>/dev/null; then
    chmod 0755 "$ROOT$APP_DIR/chrome-sandbox"
  else
    chmod 4755 "$ROOT$APP_DIR/chrome-sandbox"
  fi
fi

if [ -z "$ROOT" ]; then
  if command -v update-mime-database >/dev/null 2>&1; then update-mime-database /usr/share/mime || true; fi
  if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database /usr/share/applications || true; fi
  # AppArmor profile for Electron's sandbox (Ubuntu 24.04+), if this AppArmor can parse it.
  if command -v apparmor_status >/dev/null 2>&1 && apparmor_status --enabled >/dev/null 2>&1; then
    profile_src=$APP_DIR/resources/apparmor-profile
    profile=/etc/apparmor.d/$TRAY
    if apparmor_parser --skip-kernel-load --debug "$profile_src" >/dev/null 2>&1; then
      cp -f "$profile_src" "$profile"
      if ! { [ -x /usr/bin/ischroot ] && /usr/bin/ischroot; }; then
        apparmor_parser --replace --write-cache --skip-read-cache "$profile" || true
      fi
    else
      say "skipping the AppArmor profile: this AppArmor does not support it"
    fi
  fi
fi

# --- the agent as a system service ----------------------------------------------------------
# The command the unit's ExecStart names; never replace a /usr/bin/zcc that is not a link.
if [ -e "$ROOT/usr/bin/zcc" ] && [ ! -L "$ROOT/usr/bin/zcc" ]; then
  say "warning: /usr/bin/zcc exists and is not a link to the agent; leaving it alone"
else
  ln -sf "$AGENT" "$ROOT/usr/bin/zcc"
fi

# Merged /usr (Debian 12, Fedora, ...) has both names for one directory; older Debian only /lib.
if [ -d "$ROOT/usr/lib/systemd/system" ] || [ ! -d "$ROOT/lib/systemd/system" ]; then
  UNIT_DIR=/usr/lib/systemd/system
else
  UNIT_DIR=/lib/systemd/system
fi
mkdir -p "$ROOT$UNIT_DIR"
install -m 0644 "$ROOT$UNIT_SRC" "$ROOT$UNIT_DIR/$UNIT"
for dir in /lib/systemd/system /usr/lib/systemd/system; do
  # A copy left in the other directory by an older version (not the same file via a link).
  if [ "$dir" != "$UNIT_DIR" ] && [ -f "$ROOT$dir/$UNIT" ] && [ ! "$ROOT$dir/$UNIT" -ef "$ROOT$UNIT_DIR/$UNIT" ]; then
    rm -f "$ROOT$dir/$UNIT"
  fi
done

# The tray app starts with every desktop session (XDG autostart, for all users).
mkdir -p "$ROOT/etc/xdg/autostart"
install -m 0644 "$ROOT$APP_DIR/resources/autostart/$TRAY.desktop" "$ROOT/etc/xdg/autostart/$TRAY.desktop"

# Where administrators put the managed configuration (/etc/zcc/managed.json).
mkdir -p "$ROOT/etc/zcc"
chmod 0755 "$ROOT/etc/zcc"

if [ -n "$ROOT" ]; then
  if ! grep -q "^$GROUP:" "$ROOT/etc/group" 2>/dev/null; then groupadd --system --prefix "$ROOT" "$GROUP"; fi
elif ! getent group "$GROUP" >/dev/null 2>&1; then
  groupadd --system "$GROUP" || addgroup --system "$GROUP"
fi

if systemd_running; then
  systemctl daemon-reload
  systemctl enable --now "$UNIT" || say "warning: $UNIT did not start; see journalctl -u $UNIT"
  if [ "$upgrade" = yes ]; then
    # The new binary: the agent restores the OS on stop and sets it up again on start.
    systemctl try-restart "$UNIT" || say "warning: $UNIT did not restart; see journalctl -u $UNIT"
  fi
elif command -v systemctl >/dev/null 2>&1; then
  # Not booted with systemd: enable only (the symlinks), the service starts at the next boot.
  if [ -n "$ROOT" ]; then
    systemctl --root="$ROOT" enable "$UNIT" || say "warning: could not enable $UNIT"
  else
    systemctl enable "$UNIT" || say "warning: could not enable $UNIT"
  fi
else
  say "no systemd: start $AGENT agent with this system's service manager"
fi
exit 0
