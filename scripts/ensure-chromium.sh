#!/usr/bin/env bash
# Makes sure Debian's `chromium` (the browser the web page's tests drive through Playwright, with
# executable_path=/usr/bin/chromium) and a font with Cyrillic letters are installed. Does nothing
# when both are there. The browser comes from apt only: Playwright never downloads a build of its own.
# Measured on a 2-core machine with fresh apt lists: install ~40 s (chromium 156, ~25 packages).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi dejavu; then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-chromium: not root and no sudo; install Debian's 'chromium' and 'fonts-dejavu-core' packages" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]]; then
  $SUDO apt-get update -qq
fi
$SUDO env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fontconfig >/dev/null

command -v chromium >/dev/null
echo "ensure-chromium: $(chromium --version 2>/dev/null | head -1)" >&2
