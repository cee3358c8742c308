//! Orders of rows per epoch: sequential for evaluation, seeded random for training, and
//! transformers' length grouping.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::CollateError;

/// How a [`crate::DataLoader`] orders rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// Rows in dataset order (evaluation and prediction).
    Sequential,
    /// A new random permutation every epoch, drawn from `seed` and the epoch number, so a
    /// run can be repeated or resumed exactly.
    Random {
        /// The seed (`TrainingArguments.seed`, or `data_seed`).
        seed: u64,
    },
    /// transformers' `LengthGroupedSampler`: random megabatches of 50 batches, each sorted
    /// longest first, with the longest row of all in the first batch.
    GroupByLength {
        /// The seed.
        seed: u64,
        /// Each row's length.
        lengths: Vec<usize>,
        /// The batch size the groups are made for.
        batch_size: usize,
    },
}

impl Sampler {
    /// The order of rows `0..len` in `epoch`.
    pub fn order(&self, len: usize, epoch: u64) -> Vec<usize> {
        match self {
            Sampler::Sequential => (0..len).collect(),
            Sampler::Random { seed } => permutation(len, *seed, epoch),
            Sampler::GroupByLength {
                seed,
                lengths,
                batch_size,
            } => group_by_length(lengths, *batch_size, permutation(len, *seed, epoch)),
        }
    }
}

/// One process's share of every epoch's order, for data-parallel training.
///
/// For training it is torch's `DistributedSampler`: the order (the same on every process) is
/// padded by repeating its start to a multiple of `world_size`, and rank `r` takes every
/// `world_size`-th row from the `r`-th. Every rank gets the same number of rows, so all run
/// the same number of steps and none waits for another at the end of an epoch. For
/// evaluation ([`Shard::without_padding`]) nothing repeats: each row is predicted once, and
/// ranks may get one row more than others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    rank: usize,
    world_size: usize,
    padded: bool,
}

impl Shard {
    /// The whole order, for a single process.
    pub const WHOLE: Shard = Shard {
        rank: 0,
        world_size: 1,
        padded: true,
    };

    /// Rank `rank`'s share among `world_size` processes, padded to equal shares.
    pub fn new(rank: usize, world_size: usize) -> Result<Self, CollateError> {
        if rank >= world_size {
            return Err(CollateError::RankOutOfRange { rank, world_size });
        }
        Ok(Self {
            rank,
            world_size,
            padded: true,
        })
    }

    /// Rank `rank`'s share without padding: every row goes to exactly one rank.
    pub fn without_padding(rank: usize, world_size: usize) -> Result<Self, CollateError> {
        Ok(Self {
            padded: false,
            ..Self::new(rank, world_size)?
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Rows this rank takes from an order of `len` rows (`DistributedSampler.num_samples`
    /// when padded).
    pub fn rows(&self, len: usize) -> usize {
        self.rows_after(len, 0)
    }

    /// Rows this rank takes once the first `consumed` rows of the order are done.
    pub fn rows_after(&self, len: usize, consumed: usize) -> usize {
        let rest = len.saturating_sub(consumed);
        if self.padded {
            rest.div_ceil(self.world_size)
        } else {
            rest.saturating_sub(self.rank).div_ceil(self.world_size)
        }
    }

    /// This rank's rows of `order`, in order; when padded, `order[0]` repeats after the last
    /// row where padding is needed.
    pub fn take(&self, order: &[usize]) -> Vec<usize> {
        self.take_after(order, 0)
    }

    /// This rank's rows of what is left of `order` once its first `consumed` rows (counted
    /// over all ranks) are done: how a run resumes mid-epoch, whatever the world size of the
    /// run that consumed them. The rows left are padded from the start of the order, as a
    /// whole epoch is; with the same world size they are exactly the rows the uninterrupted
    /// run takes.
    pub fn take_after(&self, order: &[usize], consumed: usize) -> Vec<usize> {
        let unseen = &order[consumed.min(order.len())..];
        unseen
            .iter()
            .chain(order.iter().cycle())
            .copied()
            .take(self.padded_len(unseen.len()))
            .skip(self.rank)
            .step_by(self.world_size)
            .collect()
    }

    /// `len` rounded up to a multiple of the world size when padded.
    fn padded_len(&self, len: usize) -> usize {
        if self.padded {
            len.div_ceil(self.world_size) * self.world_size
        } else {
            len
        }
    }
}

/// A permutation of `0..len` determined by `seed` and `epoch` alone.
fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    // The epoch is folded into the seed, as accelerate seeds each epoch's sampler with
    // `seed + epoch`.
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(epoch));
    order.shuffle(&mut rng);
    order
}

/// transformers' `get_length_grouped_indices`, applied to an already shuffled order.
fn group_by_length(lengths: &[usize], batch_size: usize, shuffled: Vec<usize>) -> Vec<usize> {
    let batch_size = batch_size.max(1);
    let multiplier = (lengths.len() / (batch_size * 4)).clamp(1, 50);
    let megabatch = multiplier * batch_size;
    let mut groups: Vec<Vec<usize>> = shuffled
        .chunks(megabatch)
        .map(|chunk| {
            let mut group = chunk.to_vec();
            // A stable sort, as Python's `sorted`, longest first.
            group.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            group
        })
        .collect();
    // Put the longest row first, so that an out-of-memory batch shows up at once.
    let longest = groups
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| lengths[a[0]].cmp(&lengths[b[0]]).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    if let Some(longest) = longest
        && longest != 0
    {
        let first = groups[0][0];
        groups[0][0] = groups[longest][0];
        groups[longest][0] = first;
    }
    groups.concat()
}

/// Splits an order into batches of `batch_size`, dropping a short last batch if asked.
pub fn batches(order: &[usize], batch_size: usize, drop_last: bool) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    order
        .chunks(batch_size)
        .filter(|chunk| !drop_last || chunk.len() == batch_size)
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_orders_are_permutations_reproducible_from_seed_and_epoch() {
        let sampler = Sampler::Random { seed: 42 };
        let first = sampler.order(100, 0);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(first, sampler.order(100, 0));
        assert_ne!(first, sampler.order(100, 1), "a new permutation each epoch");
        assert_ne!(first, Sampler::Random { seed: 7 }.order(100, 0));
    }

    #[test]
    fn drop_last_drops_only_a_short_batch() {
        let order: Vec<usize> = (0..10).collect();
        assert_eq!(batches(&order, 4, false).len(), 3);
        assert_eq!(batches(&order, 4, true).len(), 2);
        assert_eq!(batches(&order, 5, true).len(), 2);
    }

    #[test]
    fn shards_split_as_torch_distributed_sampler_does() {
        // torch: DistributedSampler(range(10), num_replicas=4, rank=r, shuffle=False)
        let order: Vec<usize> = (0..10).collect();
        let shares: Vec<Vec<usize>> = (0..4)
            .map(|rank| Shard::new(rank, 4).unwrap().take(&order))
            .collect();
        assert_eq!(
            shares,
            [vec![0, 4, 8], vec![1, 5, 9], vec![2, 6, 0], vec![3, 7, 1]]
        );
        assert_eq!(Shard::new(3, 4).unwrap().rows(10), 3);
        // More ranks than rows: the order repeats as often as needed.
        assert_eq!(Shard::new(3, 5).unwrap().take(&[7, 8]), [8]);
        assert_eq!(Shard::new(4, 5).unwrap().take(&[7, 8]), [7]);
        assert_eq!(Shard::WHOLE.take(&order), order);
        assert!(Shard::new(2, 2).is_err());
    }

    #[test]
    fn unpadded_shards_take_every_row_once() {
        let order: Vec<usize> = (0..10).collect();
        let shares: Vec<Vec<usize>> = (0..4)
            .map(|rank| Shard::without_padding(rank, 4).unwrap().take(&order))
            .collect();
        assert_eq!(
            shares,
            [vec![0, 4, 8], vec![1, 5, 9], vec![2, 6], vec![3, 7]]
        );
        let rows: Vec<usize> = (0..4)
            .map(|rank| Shard::without_padding(rank, 4).unwrap().rows(10))
            .collect();
        assert_eq!(rows, [3, 3, 2, 2]);
        assert!(Shard::without_padding(4, 4).is_err());
    }

    #[test]
    fn what_is_left_after_consumed_rows_is_shared_again() {
        let order: Vec<usize> = (10..20).collect();
        let after = |rank, world, consumed| {
            let shard = Shard::new(rank, world).unwrap();
            let rows = shard.take_after(&order, consumed);
            assert_eq!(rows.len(), shard.rows_after(order.len(), consumed));
            rows
        };
        // The same world size: the uninterrupted run's rows from that point on.
        for rank in 0..2 {
            let whole = Shard::new(rank, 2).unwrap().take(&order);
            assert_eq!(after(rank, 2, 4), whole[2..]);
        }
        // Four rows done by one process, the six left shared by three.
        assert_eq!(
            [after(0, 3, 4), after(1, 3, 4), after(2, 3, 4)],
            [vec![14, 17], vec![15, 18], vec![16, 19]]
        );
        // Five left for two: padded from the start of the order.
        assert_eq!(
            [after(0, 2, 5), after(1, 2, 5)],
            [vec![15, 17, 19], vec![16, 18, 10]]
        );
        assert!(after(0, 2, 10).is_empty());
    }

    #[test]
    fn length_groups_put_the_longest_row_first() {
        let lengths: Vec<usize> = (0..400).map(|i| (i * 37) % 101).collect();
        let sampler = Sampler::GroupByLength {
            seed: 3,
            lengths: lengths.clone(),
            batch_size: 4,
        };
        let order = sampler.order(lengths.len(), 0);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..400).collect::<Vec<_>>());
        assert_eq!(lengths[order[0]], 100);
        // Within a megabatch (20 batches of 4 here) lengths fall, apart from the swapped head.
        let megabatch = &order[1..80];
        assert!(megabatch.windows(2).all(|w| lengths[w[0]] >= lengths[w[1]]));
    }
}
