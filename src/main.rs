//! rmq-registrar: command line, config, logging; the work is in the library.

use std::process::ExitCode;

use clap::Parser;
use rmq_registrar::cli::Cli;

/// glibc keeps freed multi-MB registration bodies in per-thread arenas, and its dynamic mmap
/// threshold moves big blocks onto the heap after the first free: RSS then ratchets up with
/// every round. A fixed 1 MiB threshold (big bodies are mmapped and given back on free) and
/// two arenas keep the footprint flat (measured in tests/it/daemon_faults.rs).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
fn main() -> ExitCode {
    tune_allocator();
    rmq_registrar::app::main(Cli::parse())
}
