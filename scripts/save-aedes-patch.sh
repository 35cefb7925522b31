#!/bin/sh
# Saves the edits made in node_modules/aedes beyond the three security patches (001-003)
# into patches/aedes+2.0.0-beta.1+004+mqtt5-features.patch, creating it the first time.
# patch-package updates the LAST patch of a sequence, so without this check a first run
# would fold feature edits into the GHSA-p8r9 patch.
set -e
cd "$(dirname "$0")/.."
exec 9>/tmp/aedes-patch.lock
flock 9
if ls patches/aedes+2.0.0-beta.1+004+* >/dev/null 2>&1; then
  npx patch-package aedes
else
  npx patch-package aedes --append mqtt5-features
fi
ls patches
