//! Batches of an encoded dataset, padded on a background thread ahead of the consumer.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::Device;

use crate::collator::{Batch, DataCollatorWithPadding, GlobalRows, PaddedBatch};
use crate::encoded::EncodedDataset;
use crate::error::CollateError;
use crate::sampler::{Sampler, Shard, batches};

/// Batches padded ahead of the one being consumed.
const PREFETCH: usize = 4;

/// Turns an encoded dataset into batches, epoch after epoch, like a torch `DataLoader` with a
/// `DataCollatorWithPadding`.
#[derive(Debug, Clone)]
pub struct DataLoader {
    dataset: Arc<EncodedDataset>,
    collator: DataCollatorWithPadding,
    sampler: Sampler,
    shard: Shard,
    batch_size: usize,
    drop_last: bool,
}

impl DataLoader {
    /// A loader of `batch_size` rows (at least 1) in `sampler`'s order.
    pub fn new(
        dataset: Arc<EncodedDataset>,
        collator: DataCollatorWithPadding,
        sampler: Sampler,
        batch_size: usize,
        drop_last: bool,
    ) -> Result<Self, CollateError> {
        if batch_size == 0 {
            return Err(CollateError::Zero { what: "batch size" });
        }
        Ok(Self {
            dataset,
            collator,
            sampler,
            shard: Shard::WHOLE,
            batch_size,
            drop_last,
        })
    }

    /// Only `shard`'s rows of every epoch, for one process of several.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<EncodedDataset> {
        &self.dataset
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch (of this process's shard).
    pub fn len(&self) -> usize {
        self.len_after(0)
    }

    /// Batches left in an epoch once `consumed` rows of it (counted over all processes) are
    /// done.
    pub fn len_after(&self, consumed: usize) -> usize {
        let rows = self.shard.rows_after(self.dataset.len(), consumed);
        if self.drop_last {
            rows / self.batch_size
        } else {
            rows.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row indices of each batch of `epoch`.
    pub fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        self.epoch_batches_after(epoch, 0)
    }

    /// The row indices of each batch left in `epoch` once `consumed` of its rows (counted over
    /// all processes, see [`Shard::take_after`]) are done.
    pub fn epoch_batches_after(&self, epoch: u64, consumed: usize) -> Vec<Vec<usize>> {
        let order = self.sampler.order(self.dataset.len(), epoch);
        let rows = self.shard.take_after(&order, consumed);
        batches(&rows, self.batch_size, self.drop_last)
    }

    /// The batches of `epoch` as tensors on `device`, after its first `consumed` rows (to
    /// resume mid-epoch). Padding runs on a background thread, a few batches ahead.
    pub fn iter(&self, epoch: u64, consumed: usize, device: &Device) -> BatchIter {
        let plan = self.epoch_batches_after(epoch, consumed);
        let remaining = plan.len();
        let (sender, receiver) = sync_channel(PREFETCH);
        let dataset = self.dataset.clone();
        let collator = self.collator.clone();
        let worker = std::thread::Builder::new()
            .name("ft-collate-loader".to_string())
            .spawn(move || produce(&dataset, &collator, plan, sender));
        let (worker, spawn_error) = match worker {
            Ok(worker) => (Some(worker), None),
            Err(e) => (None, Some(e)),
        };
        BatchIter {
            receiver,
            worker,
            spawn_error,
            device: device.clone(),
            remaining,
            global_rows: GlobalRows {
                offset: self.shard.rank(),
                stride: self.shard.world_size(),
            },
        }
    }
}

fn produce(
    dataset: &EncodedDataset,
    collator: &DataCollatorWithPadding,
    plan: Vec<Vec<usize>>,
    sender: SyncSender<Result<PaddedBatch, CollateError>>,
) {
    for indices in plan {
        let rows: Vec<_> = indices.iter().filter_map(|&i| dataset.row(i)).collect();
        // A closed channel means the consumer stopped early: nothing is left to do.
        if sender.send(collator.pad(&rows)).is_err() {
            return;
        }
    }
}

/// An epoch's batches; dropping it early stops the background thread.
pub struct BatchIter {
    receiver: Receiver<Result<PaddedBatch, CollateError>>,
    worker: Option<JoinHandle<()>>,
    /// Why the worker could not be started, until it is reported.
    spawn_error: Option<std::io::Error>,
    device: Device,
    remaining: usize,
    global_rows: GlobalRows,
}

impl Iterator for BatchIter {
    type Item = Result<Batch, CollateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining > 0
            && let Some(source) = self.spawn_error.take()
        {
            self.remaining = 0;
            return Some(Err(CollateError::LoaderThread(source)));
        }
        let padded = self.receiver.recv().ok()?;
        self.remaining = self.remaining.saturating_sub(1);
        let global_rows = self.global_rows;
        Some(padded.map(|batch| Batch {
            global_rows,
            ..batch.to_device(&self.device)
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Unblock a worker waiting to send, then wait for it so no thread outlives the epoch.
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.receiver, closed));
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
