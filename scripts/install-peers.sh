#!/usr/bin/env bash
# Installs the real peers the tests talk to, when missing: the Rust NameServer and the Rust
# broker (pinned; both builds share one target directory: the broker's first build takes ~20 min
# on 2 cores, later runs find the binaries in ~/.cargo/bin and return at once), and Debian's
# prometheus package (a real Prometheus server and promtool, for the alert-rule tests), and
# Debian's python3-seccomp (for /usr/bin/python3: the units' RestrictAddressFamilies= as a seccomp
# filter, tests/sandbox/restrict-address-families.py), and `producer`: rmq-load-producer, our load
# producer on rocketmq-client-rust (peers/load-producer, built from this repository with its own
# lock file into the same target directory; rebuilt when its sources change).
# For the package test (scripts/package-test.sh), not in the default set: `cargo-deb` (pinned),
# `systemd` (Debian's systemd and man-db: systemd-analyze verify, which also opens the units'
# man: links) and `lintian` (Debian's package checker).
# Usage: scripts/install-peers.sh [namesrv|broker|producer|prometheus|seccomp|cargo-deb|systemd|lintian]...
#        (default: namesrv broker producer prometheus seccomp)
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
NAMESRV_VERSION=1.0.0
BROKER_VERSION=1.0.0
CARGO_DEB_VERSION=3.8.0
export CARGO_TARGET_DIR="${RMQ_PEERS_TARGET_DIR:-${TMPDIR:-/tmp}/rmq-peers-target}"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(namesrv broker producer prometheus seccomp)
# Installs Debian packages with apt-get.
apt_install() {
  local sudo_=""
  [ "$(id -u)" -ne 0 ] && sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "$@" >/dev/null
}

# The repository's root, where peers/ is, wherever this script is run from.
repo="$(cd "$(dirname "$0")/.." && pwd)"

for peer in "${want[@]}"; do
  if [ "$peer" = producer ]; then
    # Built from the repository, not crates.io: installed again whenever the binary's
    # `--version` does not name this crate's version and a digest of its sources (Cargo.toml,
    # Cargo.lock, src/), which the build embeds from RMQ_LOAD_PRODUCER_SOURCES.
    src="$repo/peers/load-producer"
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/Cargo.toml" | head -n 1)
    digest=$(cd "$src" && find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
    expected="rmq-load-producer $version (sources $digest)"
    if [ "$(rmq-load-producer --version 2>/dev/null || true)" != "$expected" ]; then
      echo ">> installing $expected from $src (first time on this machine: several minutes)"
      RMQ_LOAD_PRODUCER_SOURCES="$digest" cargo install --locked --path "$src"
    fi
    command -v rmq-load-producer
    continue
  fi
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
