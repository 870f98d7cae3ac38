#!/usr/bin/env bash
# End-to-end tests of the signer pages in real headless Chromium (e2e/signing.test.mjs):
# playwright-core drives Debian's Chromium against the debug `signeur` binary, with an SMTP
# sink in the test process. Also writes docs/screenshots/signing-*.png.
#
# Installs what it needs itself: Debian's chromium (if /usr/bin/chromium is missing) and the
# npm packages pinned in e2e/package-lock.json (npm ci). Builds the binary first.
#
# Environment (optional): CARGO_TARGET_DIR (default ~/.cache/signeur-target),
# E2E_KEEP_TMP=1 to keep the server's data dir, log and failure screenshots.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/signeur-target}"
log() { echo "e2e.sh: $*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
log "$(/usr/bin/chromium --version 2>/dev/null | head -n 1 || echo 'chromium: version unknown')"

log "npm ci (e2e/)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

log "cargo build --workspace --locked"
cargo build --workspace --locked

log "node --test (e2e/)"
cd e2e
E2E_SIGNEUR_BIN="$CARGO_TARGET_DIR/debug/signeur" \
E2E_CHROMIUM=/usr/bin/chromium \
    node --test signing.test.mjs
