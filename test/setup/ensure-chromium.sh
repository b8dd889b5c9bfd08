#!/bin/sh
# Runs before `npm test` (package.json "pretest") and in .ci/run: the dashboard's browser test
# (test/dashboard.e2e-spec.ts) drives Debian's Chromium through playwright-core, which downloads no browser.
# Present: nothing to do. Missing and running as root with apt-get: install Debian's `chromium` package.
# Otherwise: fail, saying how to install it (the test never skips silently). CHROMIUM_PATH points elsewhere.
set -eu
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0

if [ "$chromium" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $chromium is missing: installing Debian's chromium package (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet: update only when the first try fails.
  apt-get install -y --no-install-recommends chromium >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }
  [ -x "$chromium" ] && { "$chromium" --version 2>/dev/null >&2 || true; exit 0; }
fi

cat >&2 <<MESSAGE
ensure-chromium: no Chromium at $chromium, needed by the dashboard's browser test (test/dashboard.e2e-spec.ts).
  Debian/Ubuntu:  sudo apt-get install chromium     (then run the tests again)
  elsewhere:      CHROMIUM_PATH=/path/to/chromium npm test
MESSAGE
exit 1
