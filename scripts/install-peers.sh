#!/usr/bin/env bash
# Installs the real peers the tests talk to, when missing: the Rust NameServer and the Rust
# broker (pinned; both builds share one target directory: the broker's first build takes ~20 min
# on 2 cores, later runs find the binaries in ~/.cargo/bin and return at once), and Debian's
# prometheus package (a real Prometheus server and promtool, for the alert-rule tests), and
# Debian's python3-seccomp (for /usr/bin/python3: the units' RestrictAddressFamilies= as a seccomp
# filter, tests/sandbox/restrict-address-families.py).
# For the package test (scripts/package-test.sh), not in the default set: `cargo-deb` (pinned),
# `systemd` (Debian's systemd and man-db: systemd-analyze verify, which also opens the units'
# man: links) and `lintian` (Debian's package checker).
# Usage: scripts/install-peers.sh [namesrv|broker|prometheus|seccomp|cargo-deb|systemd|lintian]...
#        (default: namesrv broker prometheus seccomp)
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
NAMESRV_VERSION=1.0.0
BROKER_VERSION=1.0.0
CARGO_DEB_VERSION=3.8.0
export CARGO_TARGET_DIR="${RMQ_PEERS_TARGET_DIR:-${TMPDIR:-/tmp}/rmq-peers-target}"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(namesrv broker prometheus seccomp)
# Installs Debian packages with apt-get.
apt_install() {
  local sudo_=""
  [ "$(id -u)" -ne 0 ] && sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "$@" >/dev/null
}

for peer in "${want[@]}"; do
  if [ "$peer" = prometheus ]; then
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
      echo ">> installing Debian's prometheus package (prometheus, promtool)"
      apt_install prometheus
    fi
    command -v promtool
    continue
  fi
  if [ "$peer" = systemd ]; then
    if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v man >/dev/null 2>&1; then
      echo ">> installing Debian's systemd and man-db packages (systemd-analyze, man)"
      apt_install systemd man-db
    fi
    command -v systemd-analyze
    continue
  fi
  if [ "$peer" = seccomp ]; then
    # Debian's module is for Debian's python3, whatever python3 comes first on PATH.
    if ! /usr/bin/python3 -c 'import seccomp' >/dev/null 2>&1; then
      echo ">> installing Debian's python3-seccomp package"
      apt_install python3 python3-seccomp
    fi
    echo /usr/bin/python3
    continue
  fi
  if [ "$peer" = lintian ]; then
    if ! command -v lintian >/dev/null 2>&1; then
      echo ">> installing Debian's lintian package"
      apt_install lintian
    fi
    command -v lintian
    continue
  fi
  case "$peer" in
    namesrv) crate=rocketmq-namesrv bin=rocketmq-namesrv-rust version=$NAMESRV_VERSION ;;
    broker) crate=rocketmq-broker bin=rocketmq-broker-rust version=$BROKER_VERSION ;;
    cargo-deb) crate=cargo-deb bin=cargo-deb version=$CARGO_DEB_VERSION ;;
    *) echo "unknown peer: $peer" >&2; exit 2 ;;
  esac
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo ">> installing $crate $version (first time on this machine: several minutes)"
    cargo install --locked --version "$version" "$crate"
  fi
  command -v "$bin"
done
