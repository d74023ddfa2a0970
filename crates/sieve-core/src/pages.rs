//! Memory hints: transparent huge pages for large fresh buffers, and an allocator that keeps
//! freed memory for reuse.

/// Buffers of at least this many bytes are advised to use huge pages. NumPy 2 advises its
/// array buffers from the same size on (`indicate_hugepages` in its `multiarray/alloc.c`).
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Asks the kernel to back `buffer`'s allocation with transparent huge pages before its pages
/// are first touched. Filling a fresh buffer of several MiB then takes a few page faults of
/// 2 MiB instead of one per 4 KiB page. The hint changes no contents. The kernel ignores it
/// where transparent huge pages are switched off, and off Linux it does nothing.
pub(crate) fn advise_huge_pages<T>(buffer: &Vec<T>) {
    let bytes = buffer.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }

    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return;
        };
        let start = buffer.as_ptr() as usize;
        let aligned = start.next_multiple_of(page);
        let length = (start + bytes).saturating_sub(aligned) / page * page;
        if length == 0 {
            return;
        }
        // SAFETY: the range lies inside the buffer's allocation, and MADV_HUGEPAGE only
        // changes how its pages are backed. A failure leaves the pages as they are.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, length, libc::MADV_HUGEPAGE);
        }
    }
}

/// Allocations from this size on get their own memory mapping from glibc, returned to the
/// kernel when freed.
const MMAP_THRESHOLD_BYTES: i32 = 32 << 20;
/// Free memory at the top of glibc's heap is returned to the kernel once it exceeds this.
const TRIM_THRESHOLD_BYTES: i32 = 64 << 20;

/// Makes glibc's allocator keep freed buffers of up to 32 MiB for reuse, instead of returning
/// them to the kernel.
///
/// By default glibc maps buffers of a few MiB freshly and unmaps or trims them when they are
/// freed. Every map the filter or a detector writes is such a buffer, and the kernel then
/// zero-fills each of its 4 KiB pages again on first touch. Call this once at the start of a
/// program, before other threads allocate. The process keeps up to 64 MiB of freed memory.
/// Off glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings and has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_keep_contents() {
        for len in [0usize, 10, (8 << 20) / 4 + 3] {
            let mut values: Vec<u32> = (0..len as u32).collect();
            advise_huge_pages(&values);
            values.push(7);
            assert_eq!(values.len(), len + 1);
            assert!(values[..len]
                .iter()
                .enumerate()
                .all(|(i, &v)| v == i as u32));
        }

        let fresh: Vec<f32> = Vec::with_capacity(8 << 20);
        advise_huge_pages(&fresh);
        let mut fresh = fresh;
        fresh.resize(8 << 20, 1.5);
        assert!(fresh.iter().all(|&v| v == 1.5));
    }
}
