#!/bin/bash
# Builds build/backup-agent_<version>_<arch>.deb the Debian way: inside a clean Debian 13 (trixie)
# root with Debian's own nodejs and npm. Why: the sd-notify addon links Debian's shared libnode.so.115;
# an addon built against nodesource's Node (the developers' Node) does not load on Debian's Node.
# Nothing of the host's node, node_modules or dist/ goes into the package: the source is copied into
# the root and `npm ci` runs there from package-lock.json.
#
# Usage: scripts/build-deb.sh [--commit REF] [--measure] [--no-lintian] [--refresh-root]
#   --commit REF    package the committed tree REF (e.g. a release tag) instead of the work tree
#   --measure       also compare the esbuild bundle with production node_modules (size, --help time)
#   --no-lintian    skip lintian (it takes about a minute)
#   --refresh-root  rebuild the cached trixie root from scratch
# Environment: BACKUP_AGENT_BUILD_CACHE (default /var/cache/backup-agent-build) holds the root, the
# apt archives and the npm cache between builds; DEBIAN_MIRROR (default http://deb.debian.org/debian).
#
# Needs root (debootstrap, systemd-nspawn), and the host packages debootstrap and systemd-container.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${BACKUP_AGENT_BUILD_CACHE:-/var/cache/backup-agent-build}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$cache/trixie-root

measure=no
lintian=yes
refresh=no
commit=
while (($# > 0)); do
  case $1 in
    --commit)
      commit=${2:?--commit needs a git ref}
      shift
      ;;
    --measure) measure=yes ;;
    --no-lintian) lintian=no ;;
    --refresh-root) refresh=yes ;;
    *)
      echo "build-deb.sh: unknown argument: $1" >&2
      exit 2
      ;;
  esac
  shift
done

if [[ $(id -u) -ne 0 ]]; then
  echo "build-deb.sh: run as root (debootstrap and systemd-nspawn need it)" >&2
  exit 77
fi
for tool in debootstrap systemd-nspawn git; do
  command -v "$tool" >/dev/null || {
    echo "build-deb.sh: $tool is missing (apt-get install debootstrap systemd-container git)" >&2
    exit 1
  }
done

# What the build needs inside the root. node-gyp, g++, make, python3 and libsystemd-dev compile the
# addon; lintian and man-db check the result; debhelper is there for its dh_installsystemd
# snippets, which packaging/maintainer/* copy; systemd for systemd-analyze when working on the unit.
build_packages=(nodejs npm node-gyp g++ make python3 pkg-config libsystemd-dev lintian man-db debhelper systemd)

started=$SECONDS
log() { printf 'build-deb: [%4ds] %s\n' "$((SECONDS - started))" "$*"; }

# Networks that inspect TLS (a proxy with its own CA, as on the CI machines) need the host's CA
# bundle for npm's downloads. It only decides whom npm trusts for the download; the lockfile's
# integrity hashes still decide what is installed.
ca_args=()
host_ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [[ -f $host_ca ]]; then
  ca_args=(--bind-ro="$host_ca:/etc/ssl/host-ca-certificates.crt"
    --setenv=NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca-certificates.crt
    --setenv=npm_config_cafile=/etc/ssl/host-ca-certificates.crt)
fi

# Runs a command inside the root. --register=no --keep-unit: the host may not run systemd-machined
# (or systemd at all); nspawn then just makes the namespaces. /tmp inside is a fresh tmpfs.
# The apt archive and the npm cache are bind-mounted so that repeated builds download nothing.
in_root() {
  systemd-nspawn --quiet --register=no --keep-unit --directory="$1" --pipe \
    --bind="$cache/apt-archives:/var/cache/apt/archives" \
    --bind="$cache/npm-cache:/root/.npm" \
    --setenv=DEBIAN_FRONTEND=noninteractive --setenv=LC_ALL=C.UTF-8 "${ca_args[@]}" \
    "${@:2}" 2> >(grep -v 'Attempted to remove disk file system' >&2)
  # (nspawn prints that line when the root is not on its own file system; it is harmless.)
}

mkdir -p "$cache/apt-archives/partial" "$cache/npm-cache"

# One build at a time per cache: the root and its /build are shared (engineers and e2e tests build
# in parallel on one machine).
exec 9>"$cache/build.lock"
if ! flock --nonblock 9; then
  log "waiting for another build using $cache"
  flock 9
fi

# The marker records which packages the root was made with: a changed list makes a new root.
marker_text="trixie ${build_packages[*]}"
if [[ $refresh == yes || ! -f $root/.backup-agent-build-root || $(<"$root/.backup-agent-build-root") != "$marker_text" ]]; then
  log "creating the Debian 13 build root in $root (a few minutes, once)"
  rm -rf --one-file-system "$root.tmp" "$root"
  # --cache-dir shares downloaded .debs with later builds and with the e2e containers.
  debootstrap --variant=minbase --cache-dir="$cache/apt-archives" trixie "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  in_root "$root.tmp" apt-get update -q >>"$cache/debootstrap.log" 2>&1
  in_root "$root.tmp" apt-get install -y -q --no-install-recommends "${build_packages[@]}" >>"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  printf '%s' "$marker_text" >"$root.tmp/.backup-agent-build-root"
  mv "$root.tmp" "$root"
else
  log "reusing the build root $root"
fi

# A fresh copy of the source: either the committed tree REF, or the work tree's tracked files plus
# new files that are not ignored (so no node_modules, dist or build; deleted files are skipped).
work=$root/build
rm -rf --one-file-system "$work"
mkdir -p "$work/src"
if [[ -n $commit ]]; then
  git -C "$repo" archive --format=tar "$commit" | tar --extract --directory="$work/src"
else
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' file; do
      if [[ -e $repo/$file ]]; then printf '%s\0' "$file"; fi
    done |
    tar --create --directory="$repo" --null --files-from=- |
    tar --extract --directory="$work/src"
fi
log "source copied ($(du -sh "$work/src" | cut -f1))"

inner_args=(--out /build/out)
[[ $measure == yes ]] && inner_args+=(--measure)
[[ $lintian == yes ]] && inner_args+=(--lintian)
in_root "$root" bash /build/src/packaging/build-in-root.sh "${inner_args[@]}"

mkdir -p "$repo/build"
for deb in "$work"/out/*.deb; do
  cp "$deb" "$repo/build/"
  log "built build/$(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
done
[[ $measure == yes ]] && cp "$work/out/measurements.txt" "$repo/build/bundle-measurements.txt"
log "done in $((SECONDS - started)) s"
