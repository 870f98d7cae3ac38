#!/usr/bin/env bash
# Regenerates the stamp evidence in this directory: a sample document (tests/fixtures/one-page.pdf)
# stamped with three signers in three scripts (one with a drawn signature) and then sealed, by
# the `evidence_sample` test of crates/signeur-pdf/tests/stamp.rs; its stamped last page and
# its certificate page rendered by poppler; and what pdftotext, pdfsig and pyHanko say of it.
#
# Needs: cargo, poppler-utils (pdftoppm, pdftotext, pdfsig), pyHanko (pip install
# pyhanko==0.38.0 pyhanko-cli==0.6.0). Usage: bash docs/evidence/make.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

SIGNEUR_EVIDENCE_DIR="$WORK" cargo test -q -p signeur-pdf --test stamp evidence_sample -- --exact
PDF="$WORK/stamped-sealed.pdf"
cp "$PDF" "$HERE/stamped-sealed.pdf"
pdftoppm -r 80 -png -f 1 -l 1 -singlefile "$PDF" "$HERE/stamped-last-page"
pdftoppm -r 80 -png -f 2 -l 2 -singlefile "$PDF" "$HERE/certificate-page"
{
  echo "# pdftotext stamped-sealed.pdf -"
  pdftotext "$PDF" -
  echo
  echo "# pdfsig stamped-sealed.pdf"
  pdfsig "$PDF" 2>&1 | sed "s|$WORK/||"
  echo
  echo "# pyhanko sign validate --no-revocation-check --trust seal-cert.pem --trust-replace stamped-sealed.pdf"
  (cd "$WORK" && pyhanko sign validate --no-revocation-check --trust seal-cert.pem \
    --trust-replace stamped-sealed.pdf 2>&1)
} > "$HERE/validation.txt"
ls -l "$HERE"
