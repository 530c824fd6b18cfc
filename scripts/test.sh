#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs the real NameServer, broker, load
# producer (rmq-load-producer) and Prometheus the tests talk to, and the seccomp module that
# runs the units' restrictions, when they are missing, then runs `cargo test` (extra arguments
# are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-peers.sh namesrv broker producer prometheus seccomp
exec cargo test --locked "$@"
