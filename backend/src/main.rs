//! The `confab` binary; everything lives in the library so tests can build the same server.

/// mimalloc instead of the system allocator: glibc's malloc spent a quarter of the server's
/// CPU in a presence storm (`malloc_consolidate`, `_int_malloc`, `unlink_chunk`: many tasks
/// freeing and allocating small buffers across threads), which mimalloc's per-thread free
/// lists avoid (a 10 000-user storm: 7.4 s of CPU before, with the name directory 4.4 s).
/// Idle connections cost about the same RSS (10.2 KiB against 9.9). The library (and so its
/// tests) does not pick an allocator: that is the binary's choice.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    confab::tls::install();
    confab::cli::main()
}
