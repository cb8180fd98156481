//! Gives `libfeige.so` the SONAME `libfeige.so.0`, so that a program linked against it records
//! that name (found through the loader's search path) rather than the build tree's path.
//! `client-sdk/ffi/install.sh` installs it as `libfeige.so.0.<minor>.<patch>` with the links.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // ELF platforms only: macOS names a dylib with -install_name, Windows has no SONAME.
    if matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos"
    ) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfeige.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
