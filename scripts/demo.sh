#!/bin/bash
# The demo on a fresh Debian 12 or 13 machine: install what it needs, build, run a real backup and restore.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
npm run build
source scripts/readable-copy.sh
readable_copy
node --import tsx scripts/demo.ts
