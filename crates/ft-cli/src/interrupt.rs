//! Ctrl-C: the first one asks the Trainer to finish its step and write a checkpoint; a second
//! one exits at once.
//!
//! Under `mpirun`, Ctrl-C reaches mpirun, which ends the whole job without waiting for a
//! checkpoint. SIGUSR1, which mpirun forwards to every process (`kill -USR1 <mpirun's pid>`),
//! raises the same flag; the Trainer agrees on it across processes, so that all stop after the
//! same step and rank 0 writes the checkpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Exit status after an interrupt, as shells report SIGINT.
pub const INTERRUPTED_EXIT: i32 = 130;

/// The process's interrupt flag, installing the handler on first use.
pub fn flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting now");
                std::process::exit(INTERRUPTED_EXIT);
            }
            eprintln!(
                "\ninterrupt: finishing the current step and writing a checkpoint \
                 (press Ctrl-C again to exit at once)"
            );
        });
        if let Err(error) = installed {
            tracing::warn!("Ctrl-C will stop training without a checkpoint: {error}");
        }
        if let Err(error) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone())
        {
            tracing::warn!("SIGUSR1 will not stop training with a checkpoint: {error}");
        }
        flag
    })
    .clone()
}
