#!/usr/bin/env bash
# Builds the Debian package and prints its path (last line of stdout). First the man pages and
# shell completions, written from the CLI definition by rmq-registrar-gen (feature "gen", a dev
# build) into packaging/generated/, then `cargo deb` (a release build; the .deb goes to
# <target dir>/debian/). Other arguments are passed to cargo deb (e.g. --profile NAME).
# Installs cargo-deb when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-deb >/dev/null 2>&1 || scripts/install-peers.sh cargo-deb >&2
# Regenerated every time: a page or a completion left from an older CLI must not be packaged.
rm -rf packaging/generated
cargo run --quiet --locked --features gen --bin rmq-registrar-gen -- packaging/generated >/dev/null
cargo deb --locked "$@"
