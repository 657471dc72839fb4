#!/bin/bash
# Installs everything the tests, the demo and the benchmarks run for real, on a fresh Debian 12 or 13:
# the servers the harness starts on loopback (MariaDB, InfluxDB 1.x, PostgreSQL, sshd), the programs the agent
# drives (duplicity, rsync, ssh, gpg), the tools that prove the .deb (debootstrap, nspawn, lintian),
# the shipped alert rules (promtool, from Debian's prometheus package) and the lint of the Ansible roles in
# deploy/ansible (ansible-core for ansible-playbook --syntax-check, and ansible-lint, as Debian ships them).
# Then the npm dependencies, exactly as locked.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (it installs Debian packages)" >&2
  exit 77
fi

packages=(
  mariadb-server mariadb-client influxdb postgresql
  duplicity rsync openssh-server openssh-client gnupg
  procps psmisc util-linux curl
  debootstrap systemd-container lintian
  prometheus
  ansible-core ansible-lint
  python3 make g++ libsystemd-dev pkg-config
)

missing=()
for package in "${packages[@]}"; do
  # No `| grep -q` under pipefail: an early exit of grep can fail the pipeline (SIGPIPE).
  [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == 'install ok installed' ]] || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  # The harness starts its own servers in temp dirs; the packages' system services must not start
  # (and must not take the default ports). policy-rc.d is Debian's switch for that during install.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's `backup` user (uid 34) is part of base-passwd; the agent relies on it, never invents one.
if ! id backup >/dev/null 2>&1; then
  echo "install-deps.sh: Debian's system user 'backup' is missing (base-passwd should provide it)" >&2
  exit 1
fi

cd "$(dirname "$0")/.."
# sd-notify is a native addon: node-gyp must use the local Node headers, not download them.
if [[ -d /usr/include/node ]]; then export npm_config_nodedir=/usr; fi
npm ci --no-audit --no-fund
