//! Entry onto rayon's thread pool for whole inference passes.

/// Runs `f` on a thread of rayon's global pool and returns its result.
///
/// Called from a thread outside the pool, every parallel loop wakes a worker and blocks until
/// the loop is done. An image passes through dozens of such loops, and with one or two threads
/// those hand-overs took about a fifth of the backbone's time. Inside `f` the loops start on a
/// worker, so they split work without that round trip. Called from a worker, `f` runs in place.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}
