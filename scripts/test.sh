#!/bin/bash
# The whole test suite on a fresh Debian 12 or 13 machine: install what the tests run against, build, test.
# Everything else (servers, targets, keys) is created by the tests themselves on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
npm run build
npm run typecheck
npm run lint
source scripts/readable-copy.sh
readable_copy
node scripts/run-tests.mjs "$@"
