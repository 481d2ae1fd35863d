//! Per-thread scratch buffers, reused across tiles, bands and calls, so that the large
//! temporaries of the convolutions are neither zeroed by the OS nor returned to it each time.

use std::cell::RefCell;

/// Buffers per thread; callers use fixed slots, and never hold one slot twice at once.
const SLOTS: usize = 3;

thread_local! {
    static SCRATCH: RefCell<[Vec<f32>; SLOTS]> =
        const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Takes scratch buffer `slot` of this thread, `len` long (contents unspecified).
pub(super) fn take(slot: usize, len: usize) -> Vec<f32> {
    let mut v = SCRATCH.with(|s| std::mem::take(&mut s.borrow_mut()[slot]));
    v.resize(len, 0.0);
    v
}

/// Gives buffer `v` back as this thread's scratch buffer `slot`.
pub(super) fn put(slot: usize, v: Vec<f32>) {
    SCRATCH.with(|s| s.borrow_mut()[slot] = v);
}
