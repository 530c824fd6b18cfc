//! The test binary's allocator: the system's, counting the allocations each thread makes, so a
//! test on a current-thread runtime can count what its own tasks allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Allocations (and reallocations) made on this thread so far.
pub fn on_this_thread() -> u64 {
    COUNT.try_with(Cell::get).unwrap_or(0)
}

fn count() {
    // A thread being torn down has no counter left: nothing to count there.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

struct Counting;

// SAFETY: every call goes unchanged to the system allocator; the counter is a const-initialized
// thread-local without a destructor, so counting never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
