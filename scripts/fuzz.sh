#!/usr/bin/env bash
# Runs one AFL++ campaign on a parser and keeps what it learned.
# Usage: scripts/fuzz.sh <target> [minutes]    targets: frame fastjson topics address config
# Needs cargo-afl (`cargo install --locked cargo-afl`; it builds AFL++ with gcc on first use).
# Afterwards: the queue, minimized, goes to fuzz/corpus/<target>/ and every crash to
# fuzz/regressions/<target>/; `cargo test --test it fuzz_corpus` replays both without a fuzzer.
set -euo pipefail
target="${1:?usage: scripts/fuzz.sh <target> [minutes]}"
minutes="${2:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${RMQ_FUZZ_OUT:-${TMPDIR:-/tmp}/rmq-fuzz}/$target"
export PATH="$HOME/.cargo/bin:$PATH"
# This machine cannot tune the CPU governor or the core-dump pattern; neither matters here.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
(cd "$root/fuzz" && cargo afl build --release --bin "$target")
bin="$root/fuzz/target/release/$target"
rm -rf "$out"
mkdir -p "$out"
cargo afl fuzz -i "$root/fuzz/seeds/$target" -o "$out" -V $((minutes * 60)) "$bin" >"$out.log" 2>&1 || {
  tail -n 30 "$out.log" >&2
  exit 1
}
stats="$out/default/fuzzer_stats"
field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
echo "$target: $(field run_time) s, $(field execs_done) executions, $(field execs_per_sec)/s, corpus $(field corpus_count), crashes $(field saved_crashes), hangs $(field saved_hangs)"
rm -rf "$root/fuzz/corpus/$target.new"
# The bash afl-cmin: the Python one keeps nothing for these persistent-mode targets.
cmin="$(find "$HOME/.local/share/afl.rs" -path '*/afl/bin/afl-cmin.bash' | head -n 1)"
PATH="$(dirname "$cmin"):$PATH" "$cmin" -i "$out/default/queue" -o "$root/fuzz/corpus/$target.new" -- "$bin" >/dev/null 2>&1
# Named by content: AFL's names (with ':' and ',') are awkward in a repository.
rm -rf "$root/fuzz/corpus/$target"
mkdir -p "$root/fuzz/corpus/$target"
for f in "$root/fuzz/corpus/$target.new"/*; do
  cp "$f" "$root/fuzz/corpus/$target/$(sha1sum "$f" | cut -c1-16)"
done
rm -rf "$root/fuzz/corpus/$target.new"
echo "$target: minimized corpus $(ls "$root/fuzz/corpus/$target" | wc -l) files"
if compgen -G "$out/default/crashes/id:*" >/dev/null; then
  mkdir -p "$root/fuzz/regressions/$target"
  for f in "$out"/default/crashes/id:*; do
    cp "$f" "$root/fuzz/regressions/$target/crash-$(sha1sum "$f" | cut -c1-12)"
  done
  echo "$target: crashes copied to fuzz/regressions/$target/"
fi
