//! This process: when it started and its peak memory (which benchmarks report), and how its
//! allocator treats freed memory.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time at which the process started, from `/proc` (Linux); `None` elsewhere.
pub fn start_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let started = now - uptime + start_ticks / ticks_per_second;
    Some(UNIX_EPOCH + Duration::from_secs_f64(started))
}

/// Peak resident memory in MiB (`VmHWM`), if the platform reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Tells mimalloc never to return freed memory to the OS, for backends whose tensors it
/// allocates (flex, ndarray). A training step frees and reallocates the same activation sizes
/// every time; by default mimalloc purges them after 10 ms and the next step faults them back
/// in, zeroed by the kernel: 90 k page faults over twelve MiniLM steps on flex, against 2 k,
/// and 5–15% of the step. Peak memory stays within a few percent, as it is reached within one
/// step. libtorch allocates its tensors itself, so on tch this would only hold the few Rust
/// buffers longer (about 100 MB more at the peak, for no speed).
pub fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3); the Rust bindings
    // name no constant for it.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one process-wide option, which mimalloc reads at each purge. The `_default`
    // form leaves a `MIMALLOC_PURGE_DELAY` from the environment in charge.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) }
}
