#!/usr/bin/env bash
# The Debian package as an operator meets it: builds it (scripts/package.sh), has Debian's lintian
# judge it (any error or warning fails), installs it on this machine with `dpkg -i`, checks every
# file it holds, verifies both units with systemd-analyze,
# runs the installed binary on the installed config and, idle, next to a real broker and
# NameServers (its RSS), removes the package and checks that a
# changed conffile survives a reinstall. The package is purged on exit, whatever happens.
# Needs root. On a machine without dpkg it says so and exits 0; .ci/run runs it where dpkg is.
# Other arguments are passed to cargo deb (e.g. --profile NAME, for a quicker build).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PKG=rmq-registrar
ETC=/etc/rmq-registrar
UNITS=/usr/lib/systemd/system

if ! command -v dpkg >/dev/null 2>&1; then
  echo "package test skipped: no dpkg on this machine (it installs the .deb)"
  exit 0
fi
fail() { echo "package test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i)"
# The test purges what it installs: never on a machine where rmq-registrar is already in use.
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
  fail "$PKG is already installed here (the test would purge it)"
fi
for p in "$ETC" /usr/bin/rmq-registrar "$UNITS/rmq-registrar.service"; do
  [ ! -e "$p" ] || fail "$p exists already (installed by hand?); the test would replace it"
done

# namesrv and broker: the idle-memory check below runs the installed binary next to them.
scripts/install-peers.sh cargo-deb systemd lintian namesrv broker >/dev/null
started=$(date +%s)
deb=$(scripts/package.sh "$@" | tail -n 1)
[ -f "$deb" ] || fail "scripts/package.sh printed no .deb path (got '$deb')"
echo ">> built $deb in $(( $(date +%s) - started )) s: $(stat -c %s "$deb") bytes," \
  "Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"

echo ">> lintian $(lintian --version | awk '{ print $2 }')"
# Errors and warnings fail; a warning that is right for this package would be overridden in a
# shipped lintian override, with the reason beside it. Informational tags are printed only.
lintian --info --display-info --fail-on error,warning "$deb" || fail "lintian reports the above"
echo "   no error, no warning"

work=$(mktemp -d)
purge() { dpkg --purge "$PKG" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap purge EXIT
trap 'exit 130' INT TERM HUP
dpkg -i "$deb" >/dev/null

bin=/usr/bin/rmq-registrar
# Subcommands as the installed binary lists them (clap's help subcommand has no page).
subcommands=$("$bin" --help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }' | grep -vx help)
[ -n "$subcommands" ] || fail "no subcommands in rmq-registrar --help"

echo ">> every file, and nothing else"
expected=$(
  {
    echo "$ETC/rmq-registrar.toml"
    echo /usr/bin/rmq-registrar
    echo "$UNITS/rmq-registrar.service"
    echo "$UNITS/rmq-registrar@.service"
    echo /usr/share/bash-completion/completions/rmq-registrar
    echo /usr/share/zsh/vendor-completions/_rmq-registrar
    echo /usr/share/fish/vendor_completions.d/rmq-registrar.fish
    echo /usr/share/man/man1/rmq-registrar.1.gz
    echo /usr/share/lintian/overrides/rmq-registrar
    for s in $subcommands; do echo "/usr/share/man/man1/rmq-registrar-$s.1.gz"; done
    for f in README.md operations.md copyright changelog.Debian.gz examples/minimal.toml examples/slave-files.conf examples/broker-drain.conf examples/drain-token.conf \
      examples/prometheus-rules.yml examples/prometheus-scrape.yml; do
      echo "/usr/share/doc/rmq-registrar/$f"
    done
  } | sort
)
installed=$(dpkg -L "$PKG" | while read -r f; do [ -f "$f" ] && echo "$f"; done | sort)
diff <(echo "$expected") <(echo "$installed") || fail "the package's files differ from the list above (< expected, > installed)"
# Each file is the one from the repository, with its mode and owner.
same() { cmp -s "$1" "$2" || fail "$2 is not $1"; }
same config/rmq-registrar.toml "$ETC/rmq-registrar.toml"
same systemd/rmq-registrar.service "$UNITS/rmq-registrar.service"
same systemd/rmq-registrar@.service "$UNITS/rmq-registrar@.service"
same systemd/slave-files.conf /usr/share/doc/rmq-registrar/examples/slave-files.conf
same systemd/broker-drain.conf /usr/share/doc/rmq-registrar/examples/broker-drain.conf
same systemd/drain-token.conf /usr/share/doc/rmq-registrar/examples/drain-token.conf
same config/minimal.toml /usr/share/doc/rmq-registrar/examples/minimal.toml
same deploy/prometheus/rules.yml /usr/share/doc/rmq-registrar/examples/prometheus-rules.yml
same deploy/prometheus/scrape.yml /usr/share/doc/rmq-registrar/examples/prometheus-scrape.yml
same README.md /usr/share/doc/rmq-registrar/README.md
same packaging/debian/copyright /usr/share/doc/rmq-registrar/copyright
same packaging/debian/lintian-overrides /usr/share/lintian/overrides/rmq-registrar
zcat /usr/share/doc/rmq-registrar/changelog.Debian.gz | cmp -s packaging/debian/changelog - \
  || fail "changelog.Debian.gz is not packaging/debian/changelog"
# The changelog's newest entry is this package's version (dpkg-deb's Version, revision included).
newest=$(sed -n '1s/^rmq-registrar (\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ "$newest" = "$(dpkg-deb -f "$deb" Version)" ] \
  || fail "packaging/debian/changelog's newest entry is $newest, the package is $(dpkg-deb -f "$deb" Version): add an entry"
same docs/operations.md /usr/share/doc/rmq-registrar/operations.md
same packaging/generated/completions/rmq-registrar /usr/share/bash-completion/completions/rmq-registrar
same packaging/generated/completions/_rmq-registrar /usr/share/zsh/vendor-completions/_rmq-registrar
same packaging/generated/completions/rmq-registrar.fish /usr/share/fish/vendor_completions.d/rmq-registrar.fish
for f in packaging/generated/man/*.1; do
  zcat "/usr/share/man/man1/$(basename "$f").gz" | cmp -s "$f" - || fail "man page $(basename "$f") is not the generated one"
done
while read -r f; do
  want=644
  [ "$f" = /usr/bin/rmq-registrar ] && want=755
  [ "$(stat -c '%a %U:%G' "$f")" = "$want root:root" ] || fail "$f: $(stat -c '%a %U:%G' "$f"), want $want root:root"
done <<<"$installed"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q "^ $ETC/rmq-registrar.toml " || fail "$ETC/rmq-registrar.toml is not a conffile"
[ "$("$bin" --version)" = "rmq-registrar $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')" ] || fail "rmq-registrar --version: $("$bin" --version)"

# The loader the binary asks for is one the package depends on (packed relocations: glibc 2.36).
if readelf -V "$bin" | grep -q GLIBC_ABI_DT_RELR; then
  dpkg-deb -f "$deb" Depends | grep -q 'libc6 (>= 2.36)' \
    || fail "the binary needs glibc 2.36 (GLIBC_ABI_DT_RELR), Depends: $(dpkg-deb -f "$deb" Depends)"
fi

echo ">> man pages and completions follow the CLI"
# Every option the installed binary's --help shows is on its page (in the roff source, where
# "-" is written "\-"); man finds the page and formats it without a complaint.
check_page() { # page name, then the command's arguments before --help
  local name=$1 src err
  shift
  man -w "$name" >/dev/null || fail "man $name finds no page"
  err=$(man "$name" 2>&1 >/dev/null) && [ -z "$err" ] || fail "man $name: $err"
  src=$(zcat "/usr/share/man/man1/$name.1.gz" | sed 's/\\//g')
  for opt in $("$bin" "$@" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$opt" <<<"$src" || fail "man $name does not document $opt"
  done
}
check_page rmq-registrar
for s in $subcommands; do
  check_page "rmq-registrar-$s" "$s"
  zcat /usr/share/man/man1/rmq-registrar.1.gz | sed 's/\\//g' | grep -q -- "rmq-registrar-$s" || fail "man rmq-registrar does not list $s"
done
# bash: the installed script completes the subcommands, as bash-completion would load it.
offered=$(bash -c 'source /usr/share/bash-completion/completions/rmq-registrar
  fn=$(complete -p rmq-registrar | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
  COMP_WORDS=(rmq-registrar ""); COMP_CWORD=1; COMP_LINE="rmq-registrar "; COMP_POINT=${#COMP_LINE}
  "$fn" rmq-registrar "" rmq-registrar; echo "${COMPREPLY[*]}"')
for s in $subcommands; do
  grep -qw -- "$s" <<<"$offered" || fail "bash completion does not offer $s (offers: $offered)"
  grep -q -- "$s" /usr/share/zsh/vendor-completions/_rmq-registrar || fail "zsh completion lacks $s"
  grep -q -- "$s" /usr/share/fish/vendor_completions.d/rmq-registrar.fish || fail "fish completion lacks $s"
done
head -n 1 /usr/share/zsh/vendor-completions/_rmq-registrar | grep -qx '#compdef rmq-registrar' || fail "zsh completion has no #compdef"

echo ">> units: installed disabled, and valid"
for u in rmq-registrar.service rmq-registrar@.service; do
  state=$(systemctl is-enabled "$u" 2>&1 || true)
  [ "$state" = disabled ] || fail "$u is '$state' after install, want disabled"
done
if find /etc/systemd/system -name 'rmq-registrar*' | grep -q .; then
  fail "the install enabled something: $(find /etc/systemd/system -name 'rmq-registrar*')"
fi
# verify also runs the units' ExecStart= binary check and opens their man: link.
systemd-analyze verify "$UNITS/rmq-registrar.service" || fail "systemd-analyze verify rmq-registrar.service"
# The template, as the instance an operator starts (rmq-registrar@broker-a.service).
ln -s "$UNITS/rmq-registrar@.service" "$work/rmq-registrar@broker-a.service"
systemd-analyze verify "$work/rmq-registrar@broker-a.service" || fail "systemd-analyze verify rmq-registrar@.service"
grep -qx 'ExecStart=/usr/bin/rmq-registrar --config /etc/rmq-registrar/%i.toml run' "$UNITS/rmq-registrar@.service" \
  || fail "the template does not read /etc/rmq-registrar/%i.toml"
grep -qx 'StateDirectory=rmq-registrar/%i' "$UNITS/rmq-registrar@.service" || fail "the template's state directory is shared"
# The template is the main unit with its own config and state directory; nothing else differs.
strip_unit() { grep -v -e '^#' -e '^Description=' -e '^ExecStart=' -e '^StateDirectory=' "$1"; }
diff <(strip_unit "$UNITS/rmq-registrar.service") <(strip_unit "$UNITS/rmq-registrar@.service") \
  || fail "rmq-registrar@.service has drifted from rmq-registrar.service"

# The drop-ins as an operator installs them (the credential line uncommented): on a stand-in
# broker unit and on the daemon's template instance, systemd reads them without a complaint.
examples=/usr/share/doc/rmq-registrar/examples
mkdir -p "$work/units/rmq-test-broker.service.d" "$work/units/rmq-registrar@broker-a.service.d"
printf '[Unit]\nDescription=stand-in broker\n[Service]\nExecStart=/bin/sleep infinity\n' >"$work/units/rmq-test-broker.service"
sed 's/^#LoadCredential=/LoadCredential=/' "$examples/broker-drain.conf" >"$work/units/rmq-test-broker.service.d/drain.conf"
cp "$UNITS/rmq-registrar@.service" "$work/units/rmq-registrar@broker-a.service"
cp "$examples/drain-token.conf" "$work/units/rmq-registrar@broker-a.service.d/"
for u in rmq-test-broker.service rmq-registrar@broker-a.service; do
  out=$(SYSTEMD_UNIT_PATH="$work/units:" systemd-analyze verify "$work/units/$u" 2>&1) || fail "systemd-analyze verify $u with its drop-in: $out"
  if grep -qi -e unknown -e ignoring -e warn <<<"$out"; then fail "$u's drop-in: $out"; fi
done
echo "   the drain drop-ins load on a broker unit and on an instance"

echo ">> the installed binary on the installed config: no identity until one is given"
set +e
out=$(env -u NAMESRV_ADDR -u RMQ_REGISTRAR_CONFIG "$bin" --config "$ETC/rmq-registrar.toml" check-config 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] || fail "check-config on the bare conffile exited $rc, want 2: $out"
grep -q 'broker.name' <<<"$out" && grep -q 'RMQ_REGISTRAR_BROKER__NAME' <<<"$out" \
  || fail "check-config does not name the missing identity and where to set it: $out"
echo "   exit 2: $out"
# The conffile sets no key, NameServers included: they come from the environment here.
out=$(NAMESRV_ADDR=10.0.0.2:9876 RMQ_REGISTRAR_BROKER__NAME=broker-a RMQ_REGISTRAR_BROKER__ADDR=10.0.0.1:10911 \
  "$bin" --config "$ETC/rmq-registrar.toml" check-config 2>&1) || fail "check-config with the identity from the environment: $out"
grep -q 'broker-a' <<<"$out" || fail "check-config does not show broker.name = broker-a: $out"
grep -q '^namesrv.addrs = \["10.0.0.2:9876"\] *# environment variable NAMESRV_ADDR' <<<"$out" \
  || fail "the conffile overrides NAMESRV_ADDR: $out"
echo "   exit 0 with NAMESRV_ADDR, RMQ_REGISTRAR_BROKER__NAME and RMQ_REGISTRAR_BROKER__ADDR set"

echo ">> the installed binary, idle: RSS after the second round (README: at most 8 MiB)"
# The README's minimal config next to a real broker and two real NameServers; the test build of
# tests/it is reused when scripts/test.sh has built it.
REGISTRAR_UNDER_TEST="$bin" cargo test --locked --test it idle_memory -- --nocapture 2>&1 \
  | tee "$work/idle.log" | grep -E '^idle after|^test result' \
  || true
grep -q '^test result: ok' "$work/idle.log" || { cat "$work/idle.log"; fail "the installed binary's idle memory (above)"; }

echo ">> the installed postinst's upgrade rule: instances one at a time, a NameServer down"
# tests/it/postinst.rs, on the installed binary and the installed maintainer script (with the
# systemd snippets cargo-deb put in it).
REGISTRAR_UNDER_TEST="$bin" POSTINST_UNDER_TEST=/var/lib/dpkg/info/$PKG.postinst \
  cargo test --locked --test it postinst 2>&1 | tee "$work/postinst.log" | grep -E '^test |^test result' || true
grep -q '^test result: ok. 3 passed' "$work/postinst.log" || { cat "$work/postinst.log"; fail "the installed postinst's upgrade rule (above)"; }

echo ">> a changed conffile survives removal and reinstall"
echo '# changed by the operator' >>"$ETC/rmq-registrar.toml"
changed=$(sha256sum "$ETC/rmq-registrar.toml")
dpkg -r "$PKG" >/dev/null
[ ! -e /usr/bin/rmq-registrar ] || fail "dpkg -r left /usr/bin/rmq-registrar"
[ ! -e "$UNITS/rmq-registrar.service" ] || fail "dpkg -r left the unit"
[ "$(sha256sum "$ETC/rmq-registrar.toml")" = "$changed" ] || fail "dpkg -r touched the changed conffile"
dpkg -i "$deb" >/dev/null
[ "$(sha256sum "$ETC/rmq-registrar.toml")" = "$changed" ] || fail "reinstalling replaced the changed conffile"
# dpkg -r masked the unit (Debian's way of remembering it was removed); reinstalling unmasks it.
state=$(systemctl is-enabled rmq-registrar.service 2>&1 || true)
[ "$state" = disabled ] || fail "rmq-registrar.service is '$state' after the reinstall, want disabled"
# And over an installed package (what an upgrade does with an unchanged packaged conffile).
dpkg -i "$deb" >/dev/null
[ "$(sha256sum "$ETC/rmq-registrar.toml")" = "$changed" ] || fail "installing over it replaced the changed conffile"

echo ">> purge removes it all"
dpkg --purge "$PKG" >/dev/null
[ ! -e "$ETC" ] || fail "purge left $ETC: $(ls -A "$ETC")"
[ -z "$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -v not-installed)" ] || fail "still known to dpkg after purge"

echo "package test: ok ($(dpkg-deb -c "$deb" | grep -vc '/$') files, $(stat -c %s "$deb") bytes)"
