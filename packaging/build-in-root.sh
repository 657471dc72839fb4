#!/bin/bash
# Runs inside the Debian 13 build root, started by scripts/build-deb.sh with the source in
# /build/src: npm ci with Debian's npm (which compiles the sd-notify addon against Debian's Node),
# tsc, the esbuild bundle, the staging tree, dpkg-deb, then a smoke test and lintian.
# Plain dpkg-deb rather than debhelper: the package is one bundle, a unit and a few text files, and
# the maintainer scripts are debhelper's own snippets (see packaging/maintainer/).
set -euo pipefail

out=/build/out
measure=no
lintian=no
while (($# > 0)); do
  case $1 in
    --out) out=$2 && shift ;;
    --measure) measure=yes ;;
    --lintian) lintian=yes ;;
    *) echo "build-in-root.sh: unknown argument $1" >&2 && exit 2 ;;
  esac
  shift
done

started=$SECONDS
log() { printf 'build-in-root: [%4ds] %s\n' "$((SECONDS - started))" "$*"; }

src=/build/src
stage=/build/stage
lib=$stage/usr/lib/backup-agent
doc=$stage/usr/share/doc/backup-agent
cd "$src"

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
changelog_version=$(dpkg-parsechangelog --file packaging/changelog --show-field Version)
if [[ $changelog_version != "$version" ]]; then
  echo "build-in-root.sh: packaging/changelog's newest entry is $changelog_version but package.json says $version: add a changelog entry" >&2
  exit 1
fi
# Reproducible timestamps: every file gets the changelog entry's date (dpkg-deb clamps to it).
SOURCE_DATE_EPOCH=$(date --date="$(dpkg-parsechangelog --file packaging/changelog --show-field Date)" +%s)
export SOURCE_DATE_EPOCH

log "node $(node --version) (ABI $(node -p process.versions.modules)), npm $(npm --version), packaging $version for $arch"
# The addon is compiled by npm ci (sd-notify's install script runs node-gyp) with Debian's
# hardening flags, as a Debian package build would (dpkg-buildflags, hardening=+all: PIE code,
# stack protector, fortify, relro and bindnow). --foreground-scripts: node-gyp's output goes to the log.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS=$(dpkg-buildflags --get CFLAGS)
CXXFLAGS=$(dpkg-buildflags --get CXXFLAGS)
CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS)
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
export CFLAGS CXXFLAGS CPPFLAGS LDFLAGS
npm ci --no-audit --no-fund --foreground-scripts >/build/npm-ci.log 2>&1 || {
  tail -40 /build/npm-ci.log >&2
  exit 1
}
log "npm ci done"
npm run --silent build
log "tsc done"

rm -rf "$stage" "$out"
mkdir -p "$out" "$lib" "$doc" "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/etc" \
  "$stage/usr/share/man/man8" "$stage/DEBIAN"

node packaging/bundle.mjs "$lib/main.mjs" /build/bundled.json
log "bundle: $(du -ck "$lib/main.mjs" "$lib/chunks" | tail -1 | cut -f1) KiB in main.mjs and $(find "$lib/chunks" -type f | wc -l) chunks"

# The native addon, built by npm ci against this Node. Shipped as a node_modules tree beside the
# bundle: sd-notify loads notify.node through the `bindings` package, which looks for
# build/Release/notify.node under the package's own directory.
shipped=()
if [[ -d node_modules/sd-notify ]]; then
  addon=node_modules/sd-notify/build/Release/notify.node
  [[ -f $addon ]] || {
    echo "build-in-root.sh: $addon was not built (see /build/npm-ci.log)" >&2
    exit 1
  }
  for package in sd-notify bindings file-uri-to-path; do
    [[ -d node_modules/$package ]] || continue
    shipped+=("$package")
    target=$lib/node_modules/$package
    mkdir -p "$target"
    main=$(node -p "require('./node_modules/$package/package.json').main ?? 'index.js'")
    # Only what runs: the licences are in /usr/share/doc/backup-agent/copyright.
    cp "node_modules/$package/package.json" "node_modules/$package/$main" "$target/"
  done
  mkdir -p "$lib/node_modules/sd-notify/build/Release"
  # Stripped like dh_strip does for shared objects: no symbols or notes the loader does not need.
  strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$lib/node_modules/sd-notify/build/Release/notify.node" "$addon"
  chmod 644 "$lib/node_modules/sd-notify/build/Release/notify.node"
  # The Node ABI trap: an addon built for another Node's ABI does not load; it must link Debian's libnode.
  # Captured first: with pipefail, `ldd | grep -q` fails at random when grep exits before ldd has
  # written everything (SIGPIPE); that failed a build under load.
  links=$(ldd "$lib/node_modules/sd-notify/build/Release/notify.node")
  [[ $links == *libnode.so.* ]] || {
    echo "build-in-root.sh: notify.node does not link Debian's libnode: built against another Node?" >&2
    echo "$links" >&2
    exit 1
  }
  log "addon: $(du -k "$addon" | cut -f1) KiB built, $(du -k "$lib/node_modules/sd-notify/build/Release/notify.node" | cut -f1) KiB stripped"
else
  echo "build-in-root.sh: WARNING: sd-notify is not a dependency in package.json yet; the package has no addon" >&2
fi
node -e '
  const fs = require("fs");
  const list = process.argv.slice(1).map((name) => {
    const dir = "node_modules/" + name;
    const meta = JSON.parse(fs.readFileSync(dir + "/package.json", "utf8"));
    const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    const lines = file ? fs.readFileSync(dir + "/" + file, "utf8").split("\n").map((l) => l.trim()).filter((l) => /^(\(c\)|copyright\b)/i.test(l)) : [];
    return { name, version: meta.version, license: meta.license, copyright: lines };
  });
  fs.writeFileSync("/build/shipped.json", JSON.stringify(list, null, 2));
' "${shipped[@]}"

ln -s ../lib/backup-agent/main.mjs "$stage/usr/bin/backup-agent"
install -m 0644 systemd/backup-agent.service "$stage/usr/lib/systemd/system/backup-agent.service"
# Alert rules for the Prometheus server that scrapes this host's node_exporter: data, not a conffile,
# since they belong to that server's configuration (README, Metrics, says how to load them).
install -D -m 0644 prometheus/backup-agent.rules.yml "$stage/usr/share/backup-agent/backup-agent.rules.yml"

# The conffile: the commented example with every key and its default, rendered from the key tables
# (src/config/schema.ts and each engine's) by the agent itself, so it cannot disagree with the
# loader. Also kept pristine under doc/.
node dist/main.js example-config >"$stage/etc/backup-agent.ini"
install -m 0644 "$stage/etc/backup-agent.ini" "$doc/backup-agent.ini"

# Docs: the README and the operator's runbooks, each when it exists (at the top or under docs/).
for name in README.md backup_restore.md backup_sla.md; do
  for candidate in "$name" "docs/$name"; do
    if [[ -f $candidate ]]; then
      install -m 0644 "$candidate" "$doc/$name"
      break
    fi
  done
done
# A native package (no Debian revision): its changelog is changelog.gz, not changelog.Debian.gz.
gzip -9n <packaging/changelog >"$doc/changelog.gz"
node packaging/copyright.mjs /build/bundled.json /build/shipped.json "$doc/copyright"
gzip -9n <packaging/backup-agent.8 >"$stage/usr/share/man/man8/backup-agent.8.gz"
if [[ -f packaging/lintian-overrides ]]; then
  install -D -m 0644 packaging/lintian-overrides "$stage/usr/share/lintian/overrides/backup-agent"
fi

# Library dependencies of the addon, computed the Debian way (dpkg-shlibdeps wants a debian/control).
shlibs=
if [[ -f $lib/node_modules/sd-notify/build/Release/notify.node ]]; then
  mkdir -p /build/shlibs/debian
  printf 'Source: backup-agent\n\nPackage: backup-agent\nArchitecture: any\n' >/build/shlibs/debian/control
  shlibs=$(cd /build/shlibs && dpkg-shlibdeps -O "-e$lib/node_modules/sd-notify/build/Release/notify.node" | sed -n 's/^shlibs:Depends=//p')
fi

install -m 0755 packaging/maintainer/postinst packaging/maintainer/prerm packaging/maintainer/postrm "$stage/DEBIAN/"
install -m 0644 packaging/conffiles packaging/triggers "$stage/DEBIAN/"

# Ownership and modes: everything root:root and world-readable, except the conffile, which may
# name secrets: 0640 root:backup (gid 34 is static in Debian's base-passwd).
chown -R root:root "$stage"
find "$stage" -type d -exec chmod 0755 {} +
chmod 0640 "$stage/etc/backup-agent.ini"
chgrp backup "$stage/etc/backup-agent.ini"

installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
control=$(<packaging/control.in)
control=${control//@VERSION@/$version}
control=${control//@ARCH@/$arch}
control=${control//@INSTALLED_SIZE@/$installed_size}
if [[ -n $shlibs ]]; then
  control=${control//@SHLIBS_DEPENDS@/$shlibs}
else
  control=${control//, @SHLIBS_DEPENDS@/}
fi
printf '%s\n' "$control" >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control"
find "$stage" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

deb=$out/backup-agent_${version}_${arch}.deb
dpkg-deb --build -Zxz "$stage" "$deb" >/dev/null
log "$(basename "$deb"): $(du -k "$deb" | cut -f1) KiB, Installed-Size $installed_size KiB"

# Smoke test of the staged files with this root's Node: version, help, and the addon loading.
got=$(node "$lib/main.mjs" --version)
[[ $got == "$version" ]] || {
  echo "build-in-root.sh: the bundle says version '$got', expected $version" >&2
  exit 1
}
node "$lib/main.mjs" --help >/dev/null
if ((${#shipped[@]} > 0)); then
  node --input-type=module -e "
    import { createRequire } from 'node:module';
    const notify = createRequire('$lib/main.mjs')('sd-notify');
    if (typeof notify.ready !== 'function') throw new Error('sd-notify has no ready()');
  "
  log "addon loads from the bundle's directory"
fi

if [[ $measure == yes ]]; then
  bash packaging/measure-bundle.sh "$lib" "$out/measurements.txt"
fi

if [[ $lintian == yes ]]; then
  # --fail-on warning: the package must have no error and no warning; info tags are shown too.
  # Run as nobody: lintian unpacks untrusted archives and warns when it runs as root.
  chmod 0755 "$out"
  setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
    lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb"
  log "lintian: no errors, no warnings"
fi
