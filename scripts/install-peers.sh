#!/usr/bin/env bash
# Installs the real peers the tests talk to, when missing: the Rust NameServer and the Rust
# broker (pinned; both builds share one target directory: the broker's first build takes ~20 min
# on 2 cores, later runs find the binaries in ~/.cargo/bin and return at once), and Debian's
# prometheus package (a real Prometheus server and promtool, for the alert-rule tests).
# Usage: scripts/install-peers.sh [namesrv|broker|prometheus]...   (default: all three)
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
NAMESRV_VERSION=1.0.0
BROKER_VERSION=1.0.0
export CARGO_TARGET_DIR="${RMQ_PEERS_TARGET_DIR:-${TMPDIR:-/tmp}/rmq-peers-target}"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(namesrv broker prometheus)
for peer in "${want[@]}"; do
  if [ "$peer" = prometheus ]; then
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
      echo ">> installing Debian's prometheus package (prometheus, promtool)"
      sudo_=""
      [ "$(id -u)" -ne 0 ] && sudo_=sudo
      $sudo_ apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq prometheus >/dev/null
    fi
    command -v promtool
    continue
  fi
  case "$peer" in
    namesrv) crate=rocketmq-namesrv bin=rocketmq-namesrv-rust version=$NAMESRV_VERSION ;;
    broker) crate=rocketmq-broker bin=rocketmq-broker-rust version=$BROKER_VERSION ;;
    *) echo "unknown peer: $peer" >&2; exit 2 ;;
  esac
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo ">> installing $crate $version (first time on this machine: several minutes)"
    cargo install --locked --version "$version" "$crate"
  fi
  command -v "$bin"
done
