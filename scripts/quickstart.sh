#!/usr/bin/env bash
# Runs rmq-registrar for real against a NameServer on this machine:
# installs and starts rocketmq-namesrv-rust on 127.0.0.1:9876 unless one already listens there,
# starts rmq-registrar with config/quickstart.toml, then shows the broker in the NameServer's
# cluster info and the /metrics output. Ctrl-C (or --once) stops it; it unregisters on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
once=false
[ "${1:-}" = "--once" ] && once=true

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# GET a path from rmq-registrar's HTTP port, with curl or, without it, bash's /dev/tcp.
http_get() {
  if command -v curl >/dev/null; then curl -sf "http://127.0.0.1:9100$1"; return; fi
  exec 3<>/dev/tcp/127.0.0.1/9100 || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  local status; read -r _ status _ <&3
  sed '1,/^\r$/d' <&3; exec 3<&-
  [ "$status" = 200 ]
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

if ! listening 9876; then
  scripts/install-peers.sh namesrv >/dev/null
  home=$(mktemp -d /tmp/rmq-quickstart.XXXXXX)
  echo ">> starting rocketmq-namesrv-rust on 127.0.0.1:9876 (logs: $home/namesrv.log)"
  rocketmq-namesrv-rust --listenPort 9876 --bindAddress 127.0.0.1 --rocketmqHome "$home" \
    --kvConfigPath "$home/kvConfig.json" >"$home/namesrv.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do listening 9876 && break; sleep 0.1; done
fi

echo ">> building rmq-registrar"
cargo build --release --quiet --bin rmq-registrar
# Where cargo put it: CARGO_TARGET_DIR, a .cargo/config.toml target-dir, or ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/rmq-registrar"
[ -x "$bin" ] || { echo "quickstart: no $bin after the build" >&2; exit 1; }

echo ">> starting rmq-registrar (metrics on http://127.0.0.1:9100/metrics)"
"$bin" --config config/quickstart.toml run &
registrar=$!
pids=("$registrar" "${pids[@]}")
for _ in $(seq 1 100); do
  http_get /readyz >/dev/null 2>&1 && break
  sleep 0.1
done

echo; echo ">> what the NameServer knows of the broker (GET_BROKER_CLUSTER_INFO):"
"$bin" --config config/quickstart.toml status
echo; echo ">> /metrics:"
http_get /metrics | grep '^rmq_registrar_' | grep -v '_bucket' | head -25
echo
if $once; then
  kill -TERM "$registrar"; wait "$registrar" || true
  echo ">> after SIGTERM:"
  "$bin" --config config/quickstart.toml status || true
else
  echo ">> running; press Ctrl-C to stop (rmq-registrar unregisters before it exits)"
  wait "$registrar"
fi
