//! `enable_jit_checkpoint`: while such a run trains, SIGTERM asks it to finish its step,
//! write a checkpoint and stop, as transformers' `JITCheckpointCallback` does for preemptible
//! machines. Outside training, and for a second SIGTERM, the signal ends the process as it
//! would unhandled.
//!
//! The handler is installed once per process and never removed: signal-hook cannot give the
//! default action back, and a removed handler would leave SIGTERM ignored. It reads two flags
//! instead, which [`arm`] and its guard set. Unlike transformers, the checkpoint is asked for
//! at once rather than 3 s after the signal, since a checkpoint of ours is whole or absent.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::SIGTERM;

/// The process's two flags, with the handler that reads them.
#[derive(Debug)]
struct Sigterm {
    /// No run watches SIGTERM: the signal takes its default action.
    idle: Arc<AtomicBool>,
    /// A SIGTERM came while a run watched; a second takes the default action.
    requested: Arc<AtomicBool>,
}

impl Sigterm {
    /// Installs the handler: its actions run in the order registered.
    fn install() -> io::Result<Self> {
        let idle = Arc::new(AtomicBool::new(true));
        let requested = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_default(SIGTERM, idle.clone())?;
        signal_hook::flag::register_conditional_default(SIGTERM, requested.clone())?;
        signal_hook::flag::register(SIGTERM, requested.clone())?;
        Ok(Self { idle, requested })
    }
}

static SIGTERM_FLAGS: OnceLock<Option<Sigterm>> = OnceLock::new();

/// While it lives, SIGTERM asks for a checkpoint instead of ending the process.
#[derive(Debug)]
#[must_use = "SIGTERM is watched only while the guard lives"]
pub(crate) struct SigtermGuard {
    sigterm: &'static Sigterm,
}

impl SigtermGuard {
    /// Whether a SIGTERM came since [`arm`].
    pub(crate) fn requested(&self) -> bool {
        self.sigterm.requested.load(Ordering::SeqCst)
    }
}

impl Drop for SigtermGuard {
    fn drop(&mut self) {
        self.sigterm.idle.store(true, Ordering::SeqCst);
    }
}

/// Watches SIGTERM until the guard is dropped; `None` (with a warning) where the handler
/// cannot be installed, and training then runs without it.
pub(crate) fn arm() -> Option<SigtermGuard> {
    let installed = SIGTERM_FLAGS.get_or_init(|| match Sigterm::install() {
        Ok(sigterm) => Some(sigterm),
        Err(error) => {
            tracing::warn!("enable_jit_checkpoint: SIGTERM cannot be handled: {error}");
            None
        }
    });
    let sigterm = installed.as_ref()?;
    sigterm.requested.store(false, Ordering::SeqCst);
    sigterm.idle.store(false, Ordering::SeqCst);
    tracing::info!("JIT checkpointing enabled: SIGTERM writes a checkpoint and stops training");
    Some(SigtermGuard { sigterm })
}
