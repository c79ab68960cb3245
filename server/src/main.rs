use std::process::ExitCode;

// Every request allocates and frees dozens of small buffers on two or more threads; glibc's
// allocator spent a fifth of the server's CPU on that under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    baton_server::cli::main()
}
