#!/bin/bash
# Compares the two ways to ship the agent, inside the build root with Debian's Node:
#   bundle: /usr/lib/backup-agent/main.mjs (esbuild) + the sd-notify addon tree
#   modules: dist/ + production node_modules (npm ci --omit=dev), as `npm pack` would ship it
# Figures: bytes on disk, file count, and the median wall time of `--help` (start-up cost, which
# every `backup-agent` call and every service start pays). Run by scripts/build-deb.sh --measure.
set -euo pipefail

lib=$1
report=$2
prod=/build/prod

rm -rf "$prod"
mkdir -p "$prod"
cp -r /build/src/package.json /build/src/package-lock.json /build/src/dist "$prod/"
(cd "$prod" && npm ci --omit=dev --no-audit --no-fund >/build/npm-ci-prod.log 2>&1)

# Median of 15 runs after 2 warm-ups, wall and CPU (user+sys) time in ms. The machine is shared
# with other work, so wall time is noisy: the CPU time is the stable figure.
median_ms() {
  local samples=() i
  local TIMEFORMAT='%R %U %S'
  for i in $(seq 17); do
    sample=$({ time "$@" >/dev/null 2>&1; } 2>&1)
    ((i > 2)) && samples+=("$sample")
  done
  # 15 samples: the 8th of each sorted column is the median.
  printf '%s %s\n' \
    "$(printf '%s\n' "${samples[@]}" | awk '{ printf "%d\n", $1 * 1000 }' | sort -n | sed -n 8p)" \
    "$(printf '%s\n' "${samples[@]}" | awk '{ printf "%d\n", ($2 + $3) * 1000 }' | sort -n | sed -n 8p)"
}

{
  echo "node $(node --version), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-8s %8s %6s %22s\n' variant KiB files 'help: wall_ms cpu_ms'
  read -r wall cpu < <(median_ms node "$lib/main.mjs" --help)
  printf '%-8s %8s %6s %14s %7s\n' bundle "$(du -sk --apparent-size "$lib" | cut -f1)" "$(find "$lib" -type f | wc -l)" "$wall" "$cpu"
  read -r wall cpu < <(median_ms node "$prod/dist/main.js" --help)
  printf '%-8s %8s %6s %14s %7s\n' modules "$(du -sk --apparent-size "$prod" | cut -f1)" "$(find "$prod" -type f | wc -l)" "$wall" "$cpu"
  read -r wall cpu < <(median_ms node -e 0)
  printf '%-8s %8s %6s %14s %7s\n' 'node -e' - - "$wall" "$cpu"
} | tee "$report"
