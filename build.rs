//! Link settings for the daemon's executable.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Relative relocations packed (DT_RELR, glibc 2.36 and later: Debian 12, the image's
        // base): the dynamic loader reads every relocation at start, and in the plain form the
        // daemon's ~14,000 of them are 328 KiB of the executable that then stay resident for
        // the process's life; packed they are a few KiB. An idle daemon's RSS is mostly such
        // pages (README, Performance).
        println!("cargo:rustc-link-arg-bin=rmq-registrar=-Wl,-z,pack-relative-relocs");
    }
}
