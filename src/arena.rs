//! The boot binary's allocator: a bump arena first, the C library's malloc
//! once it is full.
//!
//! `load` allocates some 40 KiB in all and exits: its files are bounded,
//! and nothing it frees needs to come back. A bump pointer serves that in a
//! few instructions, where musl's mallocng runs some 1,700 distinct
//! instructions on a boot's first calls. That matters where the boot runs
//! under an emulator that translates each new instruction once: with the
//! getdents64 reader (`dir`), 5.6 ms of the hook under QEMU's TCG
//! (BENCHMARKS.md). On hardware it is nothing either way.
//!
//! Freed memory is not reused, except the last block, which is given back
//! (a `Vec` built and dropped in turn) or grown in place (a `Vec` or
//! `String` growing at the top). Every block is zeroed when it is freed,
//! and a block that moves on growing is zeroed where it was: a buffer that
//! held a secret and grew (a key file read into a `Vec`) leaves no copy
//! behind, where a C allocator would leave freed blocks as they were. When
//! the arena is full, or for a block it cannot hold, the C library serves,
//! and frees what it served: an unexpected large input costs memory, never
//! correctness. The installed system's commands, which walk whole file
//! systems, keep the C library's allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `N` bytes, page-aligned; in .bss as a static, so untouched pages cost
/// nothing.
#[repr(C, align(4096))]
struct Memory<const N: usize>(UnsafeCell<[u8; N]>);

pub struct Arena<const N: usize> {
    memory: Memory<N>,
    /// Offset of the first free byte. Atomic, so that threads (none in a
    /// boot today) could share the arena without a lock.
    top: AtomicUsize,
}

// SAFETY: the arena hands each byte range to one owner at a time: `top`
// only moves by compare-and-swap, so no two callers get overlapping ranges.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena {
            memory: Memory(UnsafeCell::new([0; N])),
            top: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.0.get() as usize
    }

    /// Whether `ptr` came from the arena (rather than from the C library).
    pub fn owns(&self, ptr: *const u8) -> bool {
        (ptr as usize).wrapping_sub(self.base()) < N
    }

    /// Bytes handed out so far (a test's and a benchmark's measure).
    pub fn used(&self) -> usize {
        self.top.load(Ordering::Relaxed)
    }

    /// A block for `layout` from the top of the arena; `None` when it does
    /// not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            // Alignment is a power of two: round the address up.
            let start = (base + top).checked_add(layout.align() - 1)? & !(layout.align() - 1);
            let end = (start - base).checked_add(layout.size())?;
            if end > N {
                return None;
            }
            match self
                .top
                .compare_exchange_weak(top, end, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(start as *mut u8),
                Err(now) => top = now,
            }
        }
    }

    /// Moves the top from the end of the block at `ptr` (`old` bytes) to
    /// `new` bytes past its start, when that block is the last one and the
    /// new end fits: a last block freed (`new` 0), grown or shrunk in place.
    fn move_top(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        let start = ptr as usize - self.base();
        let Some(new_end) = start.checked_add(new).filter(|&e| e <= N) else {
            return false;
        };
        self.top
            .compare_exchange(start + old, new_end, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

// SAFETY: blocks from the arena are inside `memory`, aligned as asked and
// never handed out twice while live (see `bump` and `move_top`); other
// blocks come from and go back to `System` with the same layout.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout contract passes on unchanged.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => {
                // Freed blocks are zeroed already; this does not lean on it.
                // SAFETY: `bump` gave `layout.size()` bytes at `ptr`.
                unsafe { ptr.write_bytes(0, layout.size()) };
                ptr
            }
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller gives back a live block of this layout.
        unsafe { ptr.write_bytes(0, layout.size()) };
        if self.owns(ptr) {
            // Only the last block comes back; the others stay used.
            self.move_top(ptr, layout.size(), 0);
        } else {
            // SAFETY: not ours, so `System` served it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: `System` served it; the caller's contract passes on.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if new_size <= layout.size() {
            // Shrunk where it is: the tail is zeroed, and given back when
            // the block is the last one.
            // SAFETY: the tail was part of the live block.
            unsafe { ptr.add(new_size).write_bytes(0, layout.size() - new_size) };
            self.move_top(ptr, layout.size(), new_size);
            return ptr;
        }
        if self.move_top(ptr, layout.size(), new_size) {
            return ptr;
        }
        // SAFETY: the caller guarantees a valid size for this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size, as the caller guarantees.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least this long;
            // `dealloc` zeroes the old one.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::Arena;
    use std::alloc::{GlobalAlloc, Layout};

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_and_disjoint() {
        let arena: Box<Arena<4096>> = Box::default();
        // SAFETY: non-zero sizes; each block is written within its size.
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            let c = arena.alloc(layout(100, 64));
            assert!(arena.owns(a) && arena.owns(b) && arena.owns(c));
            assert_eq!(b as usize % 8, 0);
            assert_eq!(c as usize % 64, 0);
            assert!(b as usize >= a as usize + 3);
            assert!(c as usize >= b as usize + 8);
            a.write_bytes(0xaa, 3);
            b.write_bytes(0xbb, 8);
            c.write_bytes(0xcc, 100);
            assert_eq!(*a.add(2), 0xaa);
            assert_eq!(*b.add(7), 0xbb);
        }
    }

    #[test]
    fn the_last_block_is_given_back_and_grows_in_place() {
        let arena: Box<Arena<4096>> = Box::default();
        // SAFETY: blocks used within their sizes, freed with their layouts.
        unsafe {
            let a = arena.alloc(layout(16, 8));
            let used = arena.used();
            let b = arena.alloc(layout(32, 8));
            arena.dealloc(b, layout(32, 8));
            assert_eq!(arena.used(), used, "the last block came back");
            // A block below the top stays used when freed.
            let c = arena.alloc(layout(32, 8));
            let d = arena.alloc(layout(8, 8));
            arena.dealloc(c, layout(32, 8));
            assert!(arena.used() > used + 32);
            // The last block grows in place and keeps its bytes.
            d.write_bytes(7, 8);
            let grown = arena.realloc(d, layout(8, 8), 200);
            assert_eq!(grown, d);
            assert_eq!(*grown.add(7), 7);
            // One below the top moves, its bytes with it.
            a.write_bytes(9, 16);
            let moved = arena.realloc(a, layout(16, 8), 64);
            assert_ne!(moved, a);
            assert_eq!(*moved.add(15), 9);
        }
    }

    #[test]
    fn a_full_arena_hands_over_to_the_c_library_and_frees_what_it_served() {
        let arena: Box<Arena<256>> = Box::default();
        // SAFETY: as above; the big blocks are freed with their layouts.
        unsafe {
            let small = arena.alloc(layout(200, 8));
            assert!(arena.owns(small));
            let big = arena.alloc(layout(1000, 8));
            assert!(!big.is_null() && !arena.owns(big));
            big.write_bytes(1, 1000);
            // Growing an arena block past the end moves it out.
            small.write_bytes(5, 200);
            let out = arena.realloc(small, layout(200, 8), 4000);
            assert!(!arena.owns(out));
            assert_eq!(*out.add(199), 5);
            arena.dealloc(out, layout(4000, 8));
            arena.dealloc(big, layout(1000, 8));
        }
    }

    #[test]
    fn freed_and_moved_blocks_are_zeroed_where_they_were() {
        let arena: Box<Arena<4096>> = Box::default();
        // SAFETY: blocks used within their sizes; the freed ones are only
        // read back through the arena's own memory, which stays mapped.
        unsafe {
            let secret = arena.alloc(layout(32, 8));
            secret.write_bytes(0x5a, 32);
            let _above = arena.alloc(layout(8, 8));
            // Freed below the top: not reused, but zeroed.
            arena.dealloc(secret, layout(32, 8));
            assert!((0..32).all(|i| *secret.add(i) == 0));
            // Grown where it cannot grow in place: moved, the old place zeroed.
            let key = arena.alloc(layout(16, 8));
            key.write_bytes(0x77, 16);
            let _above = arena.alloc(layout(8, 8));
            let moved = arena.realloc(key, layout(16, 8), 64);
            assert_ne!(moved, key);
            assert!((0..16).all(|i| *moved.add(i) == 0x77));
            assert!((0..16).all(|i| *key.add(i) == 0));
            // Shrunk in place, last or not: the tail is zeroed (and given
            // back when last).
            let last = arena.alloc(layout(64, 8));
            last.write_bytes(0x11, 64);
            let used = arena.used();
            assert_eq!(arena.realloc(last, layout(64, 8), 16), last);
            assert_eq!(arena.used(), used - 48);
            assert!((16..64).all(|i| *last.add(i) == 0));
            assert!((0..16).all(|i| *last.add(i) == 0x11));
            let below = arena.alloc(layout(32, 8));
            below.write_bytes(0x22, 32);
            let _above = arena.alloc(layout(8, 8));
            assert_eq!(arena.realloc(below, layout(32, 8), 8), below);
            assert!((8..32).all(|i| *below.add(i) == 0));
            assert!((0..8).all(|i| *below.add(i) == 0x22));
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_where_a_block_was_given_back() {
        let arena: Box<Arena<4096>> = Box::default();
        // SAFETY: as above.
        unsafe {
            let a = arena.alloc(layout(64, 8));
            a.write_bytes(0xff, 64);
            arena.dealloc(a, layout(64, 8));
            let z = arena.alloc_zeroed(layout(64, 8));
            assert_eq!(z, a);
            assert!((0..64).all(|i| *z.add(i) == 0));
        }
    }
}
