//! An allocator wrapper that counts, per thread, the allocations made through it, so
//! `dsp_latency` can show an audio callback allocates nothing. The `baton` binary installs it
//! around its real allocator; where it is not installed the count is reported as unknown.

// A `GlobalAlloc` implementation is unsafe by definition; this one only forwards to the
// wrapped allocator and bumps a thread-local counter.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    // `const` initialisation: touching it never allocates or registers a destructor, so the
    // allocator may use it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Wrap `A` (the system allocator, mimalloc…) to count allocations per thread.
#[derive(Debug, Default)]
pub struct CountingAllocator<A>(pub A);

impl<A> CountingAllocator<A> {
    /// Wrap `inner`.
    pub const fn new(inner: A) -> Self {
        CountingAllocator(inner)
    }
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to the wrapped allocator, which
// upholds `GlobalAlloc`'s contract; counting touches only a const-initialised thread-local.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Allocations made so far on this thread, or `None` when no [`CountingAllocator`] is the
/// global allocator (or the process has not allocated yet — it always has by the time it
/// runs a tool). Reading it allocates nothing, so it can bracket a callback exactly.
pub fn allocations() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| ALLOCATIONS.with(Cell::get))
}
