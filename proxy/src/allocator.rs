//! The global allocator: jemalloc on `x86_64` (feature `jemalloc`, the default), mimalloc with
//! the `mimalloc` feature, musl's otherwise; and jemalloc's background purge thread.

#[cfg(all(feature = "mimalloc", feature = "jemalloc"))]
compile_error!("enable at most one of the `mimalloc` and `jemalloc` features");

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(
    feature = "jemalloc",
    target_arch = "x86_64",
    not(feature = "mimalloc")
))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background thread (`jemalloc_bg_thd`, all signals blocked), one for all
/// arenas, for the server only.
///
/// Freed pages stay resident ("dirty") until jemalloc purges them `dirty_decay_ms` (10 s)
/// later, and without this thread that purge only runs inside later allocations: a proxy that
/// went quiet after a burst kept its peak RSS for good (+12–16% after the bench's
/// 100,000-request leak check, with live bytes flat). The thread purges on the same schedule,
/// idle or not; the request path does the same work as before (docs/benchmarks.md,
/// *Findings*). jemalloc would start one per arena in use (four on two cores): one serves them
/// all. Started here rather than through jemalloc's `malloc_conf` so that it exists only after
/// `main` has made SIGHUP harmless: a thread that predates `main` would look, from outside,
/// like a process ready for signals.
#[cfg(all(
    feature = "jemalloc",
    target_arch = "x86_64",
    not(feature = "mimalloc")
))]
pub fn purge_in_background() {
    use tikv_jemalloc_ctl::{background_thread, max_background_threads};
    if let Err(e) = max_background_threads::write(1).and_then(|()| background_thread::write(true)) {
        eprintln!(
            "ai-proxy: jemalloc's background thread did not start ({e}): memory freed after a \
             burst is returned only when requests come again"
        );
    }
}

/// Other allocators have no such thread: musl's returns memory with `munmap`, mimalloc on its
/// own schedule.
#[cfg(not(all(
    feature = "jemalloc",
    target_arch = "x86_64",
    not(feature = "mimalloc")
)))]
pub fn purge_in_background() {}

#[cfg(all(
    test,
    feature = "jemalloc",
    target_arch = "x86_64",
    not(feature = "mimalloc")
))]
mod tests {
    use std::time::{Duration, Instant};

    /// One thread runs once asked for, and not before (the SIGHUP test relies on that).
    #[test]
    fn purge_in_background_starts_jemallocs_thread() {
        let threads = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .expect("listing /proc/self/task")
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        };
        let bg = |names: &[String]| names.iter().filter(|n| *n == "jemalloc_bg_thd").count();
        assert_eq!(bg(&threads()), 0, "started before asked: {:?}", threads());
        // Arenas in use on other threads, so that jemalloc would want more than one thread.
        let spawned: Vec<_> = (0..4)
            .map(|i| std::thread::spawn(move || std::hint::black_box(vec![i; 1000]).len()))
            .collect();
        super::purge_in_background();
        let start = Instant::now();
        while bg(&threads()) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no jemalloc_bg_thd thread among {:?}",
                threads()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for t in spawned {
            t.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(bg(&threads()), 1, "{:?}", threads());
    }
}
