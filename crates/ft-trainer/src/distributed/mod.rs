//! Data-parallel training across processes: where this process sits in the job, and the
//! collective operations the Trainer needs, over MPI.
//!
//! One process runs per device, as torch's DDP runs under `torchrun`: `mpirun -np N bert-ft …`
//! starts N copies, and [`ProcessGroup::from_env`] tells each its rank. burn 0.22's own
//! collectives run only on its CUDA backend inside one process, so the gradients are averaged
//! here, on the host, through MPI (Open MPI or MPICH), which serves CPUs and GPUs on one
//! machine or many alike.
//!
//! Without a launcher every call is the single-process identity and no MPI library is touched;
//! the MPI code is compiled only with the `mpi` feature.

mod gradients;
#[cfg(feature = "mpi")]
mod mpi;

pub use gradients::{average_gradients, weights_digest};

use std::rc::Rc;

/// Why a process group could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    /// Started by an MPI launcher with several processes, in a build without MPI: each process
    /// would otherwise train a model of its own.
    #[error(
        "started by an MPI launcher as one of {world_size} processes, but this build has no MPI \
         support, so each process would train a separate model; rebuild with the `mpi` cargo \
         feature (`cargo xtask finetune-mrpc --nproc-per-node N` does)"
    )]
    NotBuiltWithMpi {
        /// Processes the launcher started.
        world_size: usize,
    },
    /// MPI was already initialised in this process.
    #[error("MPI could not be initialised: it was already initialised")]
    AlreadyInitialised,
    /// The launcher's environment and MPI disagree on the number of processes.
    #[error("the launcher started {launcher} processes, but MPI's world has {mpi}")]
    WorldSize {
        /// From the launcher's environment.
        launcher: usize,
        /// From `MPI_Comm_size`.
        mpi: usize,
    },
}

/// This process's place among the processes of one data-parallel job, and the collectives
/// between them. Cheap to clone; the last clone dropped ends MPI in this process.
///
/// Every collective must be called by every rank, in the same order: the Trainer calls them at
/// points that all ranks reach together (once per optimizer step, at evaluations and saves).
#[derive(Clone)]
pub struct ProcessGroup {
    inner: Rc<Inner>,
}

struct Inner {
    rank: usize,
    world_size: usize,
    local_rank: usize,
    local_world_size: usize,
    comm: Comm,
}

enum Comm {
    Single,
    #[cfg(feature = "mpi")]
    Mpi(mpi::MpiComm),
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.rank())
            .field("world_size", &self.world_size())
            .field("local_rank", &self.local_rank())
            .field("local_world_size", &self.local_world_size())
            .finish()
    }
}

impl Default for ProcessGroup {
    fn default() -> Self {
        Self::single()
    }
}

impl ProcessGroup {
    /// The group of this process alone.
    pub fn single() -> Self {
        Self {
            inner: Rc::new(Inner {
                rank: 0,
                world_size: 1,
                local_rank: 0,
                local_world_size: 1,
                comm: Comm::Single,
            }),
        }
    }

    /// The job this process was started in: MPI's world when an MPI launcher (`mpirun`,
    /// `mpiexec`) started several processes, else this process alone. Call it once, early,
    /// and keep the group for the life of the program.
    pub fn from_env() -> Result<Self, DistributedError> {
        match launcher_world_size() {
            None | Some(0 | 1) => Ok(Self::single()),
            Some(world_size) => Self::mpi(world_size),
        }
    }

    #[cfg(feature = "mpi")]
    fn mpi(launcher: usize) -> Result<Self, DistributedError> {
        let comm = mpi::MpiComm::init()?;
        let (rank, world_size) = comm.rank_and_size();
        if world_size != launcher {
            return Err(DistributedError::WorldSize {
                launcher,
                mpi: world_size,
            });
        }
        let (local_rank, local_world_size) = comm.local_rank_and_size();
        Ok(Self {
            inner: Rc::new(Inner {
                rank,
                world_size,
                local_rank,
                local_world_size,
                comm: Comm::Mpi(comm),
            }),
        })
    }

    #[cfg(not(feature = "mpi"))]
    fn mpi(world_size: usize) -> Result<Self, DistributedError> {
        Err(DistributedError::NotBuiltWithMpi { world_size })
    }

    /// This process's rank, `0..world_size` (`args.process_index`).
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// Processes in the job (`args.world_size`).
    pub fn world_size(&self) -> usize {
        self.inner.world_size
    }

    /// This process's rank among those on its machine (`args.local_process_index`); it picks
    /// the process's GPU.
    pub fn local_rank(&self) -> usize {
        self.inner.local_rank
    }

    /// Processes on this machine.
    pub fn local_world_size(&self) -> usize {
        self.inner.local_world_size
    }

    /// Whether this is rank 0, the one that logs and saves (`is_world_process_zero`).
    pub fn is_world_process_zero(&self) -> bool {
        self.rank() == 0
    }

    /// Whether this is the first process on its machine (`is_local_process_zero`).
    pub fn is_local_process_zero(&self) -> bool {
        self.local_rank() == 0
    }

    /// Whether there is more than one process.
    pub fn is_distributed(&self) -> bool {
        self.world_size() > 1
    }

    /// Sums `values` element-wise across ranks, in place; every rank gets the same sums.
    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        match &self.inner.comm {
            Comm::Single => {
                let _ = values;
            }
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.all_reduce_sum(values),
        }
    }

    /// [`ProcessGroup::all_reduce_sum`] in double precision, for counts and scalars.
    pub fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        match &self.inner.comm {
            Comm::Single => {
                let _ = values;
            }
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.all_reduce_sum_f64(values),
        }
    }

    /// Every rank's `local`, indexed by rank; the slices may differ in length.
    pub fn all_gather(&self, local: &[f32]) -> Vec<Vec<f32>> {
        match &self.inner.comm {
            Comm::Single => vec![local.to_vec()],
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.all_gather(local),
        }
    }

    /// Every rank's `value`, indexed by rank.
    pub fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        match &self.inner.comm {
            Comm::Single => vec![value],
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.all_gather_u64(value),
        }
    }

    /// Waits until every rank has reached this call.
    pub fn barrier(&self) {
        match &self.inner.comm {
            Comm::Single => {}
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.barrier(),
        }
    }

    /// Ends the whole job with `code`: the other ranks may be waiting in a collective for this
    /// one, and would wait forever if it only exited. A single process just exits.
    pub fn abort(&self, code: i32) -> ! {
        match &self.inner.comm {
            Comm::Single => std::process::exit(code),
            #[cfg(feature = "mpi")]
            Comm::Mpi(comm) => comm.abort(code),
        }
    }
}

/// The number of processes an MPI launcher started, from its environment: Open MPI's
/// `OMPI_COMM_WORLD_SIZE`, or the PMI variable of MPICH's and Intel MPI's Hydra.
pub fn launcher_world_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_process_is_rank_zero_of_one_and_collectives_are_identities() {
        let group = ProcessGroup::single();
        assert_eq!((group.rank(), group.world_size()), (0, 1));
        assert!(group.is_world_process_zero() && group.is_local_process_zero());
        assert!(!group.is_distributed());
        let mut values = [1.5f32, -2.0];
        group.all_reduce_sum(&mut values);
        assert_eq!(values, [1.5, -2.0]);
        assert_eq!(group.all_gather(&values), vec![vec![1.5, -2.0]]);
        assert_eq!(group.all_gather_u64(7), vec![7]);
        group.barrier();
    }

    #[cfg(not(feature = "mpi"))]
    #[test]
    fn a_build_without_mpi_refuses_a_launcher_with_several_processes() {
        let error = ProcessGroup::mpi(4).unwrap_err();
        assert!(matches!(
            error,
            DistributedError::NotBuiltWithMpi { world_size: 4 }
        ));
        assert!(error.to_string().contains("`mpi` cargo feature"), "{error}");
    }
}
