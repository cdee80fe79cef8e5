//! Live heap bytes of this process, counted by a wrapping global allocator: where RSS says how
//! much memory is held, this says how much the program asked for (the difference is the
//! allocator's own overhead and fragmentation). It wraps the allocator the `tykwatch` binary
//! uses (`src/main.rs`), so RSS figures are the binary's.

use std::alloc::{GlobalAlloc, Layout};

#[cfg(target_env = "msvc")]
use std::alloc::System as Inner;
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(target_env = "msvc"))]
use tikv_jemallocator::Jemalloc as Inner;

pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { Inner.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { Inner.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size.wrapping_sub(layout.size()), Ordering::Relaxed);
        unsafe { Inner.realloc(ptr, layout, new_size) }
    }
}

/// Bytes allocated and not yet freed, in MB.
pub fn live_mb() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}
