#!/usr/bin/env bash
# Installs the real RocketMQ peers the tests talk to, when missing: the Rust NameServer and the
# Rust broker, pinned. Both builds share one target directory (the broker's first build takes
# ~20 min on 2 cores; later runs find the binaries in ~/.cargo/bin and return at once).
# Usage: scripts/install-peers.sh [namesrv|broker]...   (default: both)
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
NAMESRV_VERSION=1.0.0
BROKER_VERSION=1.0.0
export CARGO_TARGET_DIR="${RMQ_PEERS_TARGET_DIR:-${TMPDIR:-/tmp}/rmq-peers-target}"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(namesrv broker)
for peer in "${want[@]}"; do
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
