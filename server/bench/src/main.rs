//! `baton-bench`: the load generators and the comparison points (a bare rmcp server, Baton
//! with its gate off). Not shipped: `baton` itself has no way to turn its gate off.

use std::process::ExitCode;

// The same allocator as `baton`, so the comparison points differ only in what is measured.
#[global_allocator]
static ALLOCATOR: baton_dsp::CountingAllocator<mimalloc::MiMalloc> =
    baton_dsp::CountingAllocator::new(mimalloc::MiMalloc);

fn main() -> ExitCode {
    baton_bench::main()
}
