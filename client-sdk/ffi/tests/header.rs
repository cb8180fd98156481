//! The committed C header `client-sdk/include/feige.h` must be what cbindgen generates from
//! this crate. Run with `FEIGE_BLESS=1` to rewrite it after changing the ABI.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let mut config = config;
    // cbindgen cannot emit a string constant, so the version macro is written from here.
    config.after_includes = Some(format!(
        "\n/** The SDK version this header belongs to (`feige_version()` gives the library's). */\n\
         #define FEIGE_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION")
    ));
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen: {e}"))
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap_or_else(|e| panic!("header: {e}"));
    let path = crate_dir.join("../include/feige.h");
    if std::env::var_os("FEIGE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "client-sdk/include/feige.h is stale: regenerate it with \
         `FEIGE_BLESS=1 cargo test -p feige-ffi --test header` and commit it"
    );
}
