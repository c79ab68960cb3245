use std::process::ExitCode;

// Every request allocates and frees dozens of small buffers on two or more threads; glibc's
// allocator spent a fifth of the server's CPU on that under load (docs/benchmarks.md).
// mimalloc, counted per thread so `dsp_latency` can show a callback allocates nothing.
#[global_allocator]
static ALLOCATOR: baton_dsp::CountingAllocator<mimalloc::MiMalloc> =
    baton_dsp::CountingAllocator::new(mimalloc::MiMalloc);

fn main() -> ExitCode {
    baton_cli::cli::main()
}
