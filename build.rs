//! Link options of the static release binary (scripts/build-static).

fn main() {
    println!("cargo:rerun-if-changed=link/no-unwind-tables.ld");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    // Only where panic = "abort" holds (the release profile) and the
    // linker is GNU ld or lld, as for the musl target.
    if target == "x86_64-unknown-linux-musl" && profile == "release" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/no-unwind-tables.ld");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    }
}
