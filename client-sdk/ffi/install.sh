#!/usr/bin/env bash
# Installs the C SDK under a prefix:
#   include/feige.h
#   lib/libfeige.so.0.<minor>.<patch>, lib/libfeige.so.0 -> it, lib/libfeige.so -> libfeige.so.0
#   lib/libfeige.a                      (only the feige_* symbols global)
#   lib/pkgconfig/feige.pc              (pkg-config feige)
#   lib/cmake/Feige/FeigeConfig.cmake, FeigeConfigVersion.cmake   (find_package(Feige))
#
# usage: client-sdk/ffi/install.sh --prefix DIR [--release] [--from DIR]
#   --release   build and install the release profile (default: debug)
#   --from DIR  install libfeige.so and libfeige.a from DIR instead of running cargo
#               (the tests, which run inside cargo, pass their own target/<profile>/deps)
#
# A short script rather than cargo-c: cargo-c needs a long `cargo install` on every CI machine,
# and all it would add here is this layout. Needs binutils (ld, objcopy, ar, readelf).
set -euo pipefail

usage() {
    echo "usage: $0 --prefix DIR [--release] [--from DIR]" >&2
    exit 2
}

PREFIX=""
PROFILE=debug
FROM=""
while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) [ $# -ge 2 ] || usage; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --release) PROFILE=release; shift ;;
    --from) [ $# -ge 2 ] || usage; FROM="$2"; shift 2 ;;
    --from=*) FROM="${1#--from=}"; shift ;;
    -h | --help) usage ;;
    *) echo "$0: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$PREFIX" ] || usage

SDK_DIR="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$(cd "$SDK_DIR/.." && pwd)"
HEADER="$SDK_DIR/include/feige.h"

if [ -z "$FROM" ]; then
    cargo_args=(build -p feige-ffi --lib)
    [ "$PROFILE" = release ] && cargo_args+=(--release)
    (cd "$ROOT" && cargo "${cargo_args[@]}")
    FROM="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"
fi
for f in libfeige.so libfeige.a; do
    [ -f "$FROM/$f" ] || { echo "$0: $FROM/$f not found" >&2; exit 1; }
done

# The version is the header's: what is installed must match the header installed with it.
VERSION="$(sed -n 's/^#define FEIGE_VERSION "\(.*\)"$/\1/p' "$HEADER")"
MAJOR="${VERSION%%.*}"
[ -n "$VERSION" ] || { echo "$0: no FEIGE_VERSION in $HEADER" >&2; exit 1; }
SONAME="libfeige.so.$MAJOR"
if ! readelf -d "$FROM/libfeige.so" | grep -q "Library soname: \[$SONAME\]"; then
    echo "$0: $FROM/libfeige.so has no SONAME $SONAME (client-sdk/ffi/build.rs sets it)" >&2
    exit 1
fi

mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
LIB="$PREFIX/lib"
mkdir -p "$PREFIX/include" "$LIB/pkgconfig" "$LIB/cmake/Feige"
install -m 644 "$HEADER" "$PREFIX/include/feige.h"
install -m 755 "$FROM/libfeige.so" "$LIB/libfeige.so.$VERSION"
ln -sfn "libfeige.so.$VERSION" "$LIB/$SONAME"
ln -sfn "$SONAME" "$LIB/libfeige.so"

# The static library: one relocatable object of all its members, every symbol but feige_*
# made local (so Rust's std, tokio and the compiler builtins cannot clash with the
# application's), back into an archive. `--plugin /dev/null`: binutils' ar would otherwise
# offer the object (over 65,535 sections) to the LLVM plugin of /usr/lib/bfd-plugins, which
# aborts.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ld -r --whole-archive "$FROM/libfeige.a" -o "$WORK/all.o"
objcopy --wildcard --keep-global-symbol='feige_*' "$WORK/all.o" "$WORK/feige.o"
rm -f "$WORK/libfeige.a"
ar --plugin /dev/null rcs "$WORK/libfeige.a" "$WORK/feige.o"
install -m 644 "$WORK/libfeige.a" "$LIB/libfeige.a"

# The system libraries Rust's standard library needs (`rustc --print native-static-libs`).
PRIVATE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cat >"$LIB/pkgconfig/feige.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: feige
Description: Feige instant-messaging client SDK (C ABI)
Version: $VERSION
Libs: -L\${libdir} -lfeige
Libs.private: $PRIVATE_LIBS
Cflags: -I\${includedir}
EOF

# The CMake package finds its prefix from its own location, so the prefix may be moved.
cat >"$LIB/cmake/Feige/FeigeConfig.cmake" <<EOF
# find_package(Feige) gives Feige::feige (libfeige.so) and Feige::feige_static (libfeige.a).
get_filename_component(_feige_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET Feige::feige)
    add_library(Feige::feige SHARED IMPORTED)
    set_target_properties(Feige::feige PROPERTIES
        IMPORTED_LOCATION "\${_feige_prefix}/lib/libfeige.so.$VERSION"
        IMPORTED_SONAME "$SONAME"
        INTERFACE_INCLUDE_DIRECTORIES "\${_feige_prefix}/include")
endif()
if(NOT TARGET Feige::feige_static)
    add_library(Feige::feige_static STATIC IMPORTED)
    set_target_properties(Feige::feige_static PROPERTIES
        IMPORTED_LOCATION "\${_feige_prefix}/lib/libfeige.a"
        INTERFACE_INCLUDE_DIRECTORIES "\${_feige_prefix}/include"
        INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl")
endif()
set(Feige_INCLUDE_DIR "\${_feige_prefix}/include")
unset(_feige_prefix)
EOF

# Compatible: the same major version, at least the version asked for (the ABI only grows).
cat >"$LIB/cmake/Feige/FeigeConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$VERSION")
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "" AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
    set(PACKAGE_VERSION_UNSUITABLE TRUE)
elseif(PACKAGE_FIND_VERSION STREQUAL "")
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION
       OR NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$MAJOR")
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
    if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
        set(PACKAGE_VERSION_EXACT TRUE)
    endif()
endif()
EOF

echo "installed libfeige $VERSION under $PREFIX"
