//! The collectives over MPI (the `mpi` crate, rsmpi).
//!
//! MPI's default error handler aborts the job on any communication failure, and a rank that
//! dies makes the launcher end the others, so none of these calls returns an error.

use ::mpi::Threading;
use ::mpi::collective::SystemOperation;
use ::mpi::datatype::PartitionMut;
use ::mpi::environment::Universe;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator, CommunicatorCollectives};

use super::DistributedError;

/// MPI's world, and the communicator of the ranks on this machine.
pub(super) struct MpiComm {
    // Declared before the universe: fields drop in order, and freeing a communicator needs MPI
    // still running; the universe's drop calls `MPI_Finalize`.
    world: SimpleCommunicator,
    node: SimpleCommunicator,
    _universe: Universe,
}

impl MpiComm {
    /// `MPI_Init_thread` with `MPI_THREAD_FUNNELED`: the data loader runs on its own thread, but
    /// only the main thread calls MPI.
    pub(super) fn init() -> Result<Self, DistributedError> {
        let (universe, _) = ::mpi::initialize_with_threading(Threading::Funneled)
            .ok_or(DistributedError::AlreadyInitialised)?;
        let world = universe.world();
        let node = world.split_shared(world.rank());
        Ok(Self {
            world,
            node,
            _universe: universe,
        })
    }

    pub(super) fn rank_and_size(&self) -> (usize, usize) {
        (self.world.rank() as usize, self.world.size() as usize)
    }

    pub(super) fn local_rank_and_size(&self) -> (usize, usize) {
        (self.node.rank() as usize, self.node.size() as usize)
    }

    pub(super) fn all_reduce_sum(&self, values: &mut [f32]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    pub(super) fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    pub(super) fn all_gather(&self, local: &[f32]) -> Vec<Vec<f32>> {
        let counts: Vec<usize> = self
            .all_gather_u64(local.len() as u64)
            .into_iter()
            .map(|count| count as usize)
            .collect();
        let mut all = vec![0f32; counts.iter().sum()];
        let mpi_counts: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |start, &count| {
                let here = *start;
                *start += count as i32;
                Some(here)
            })
            .collect();
        let mut partition = PartitionMut::new(&mut all[..], &mpi_counts[..], &displs[..]);
        self.world.all_gather_varcount_into(local, &mut partition);
        let mut rest = &all[..];
        counts
            .iter()
            .map(|&count| {
                let (mine, after) = rest.split_at(count);
                rest = after;
                mine.to_vec()
            })
            .collect()
    }

    pub(super) fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.world.size() as usize];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }

    pub(super) fn barrier(&self) {
        self.world.barrier();
    }

    pub(super) fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
