//! Where in the data a run is, counted so that it survives a change of world size.
//!
//! A checkpoint says how many optimizer steps were taken. With the same batch shape, that
//! step count is the position; with another number of processes (or batch size, or
//! accumulation), the steps of the old run are turned into rows of the epoch's order, counted
//! over all processes, and those rows are skipped: the resumed run sees the rows the old run
//! had not, split among its own processes.

use crate::args::TrainingArguments;

/// What decides how many rows an optimizer step takes and how an epoch splits into steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StepShape {
    pub(crate) per_device_train_batch_size: usize,
    pub(crate) gradient_accumulation_steps: usize,
    pub(crate) world_size: usize,
    pub(crate) dataloader_drop_last: bool,
}

impl StepShape {
    /// The shape `args` give on `world_size` processes.
    pub(crate) fn new(args: &TrainingArguments, world_size: usize) -> Self {
        Self {
            per_device_train_batch_size: args.per_device_train_batch_size.max(1),
            gradient_accumulation_steps: args.gradient_accumulation_steps.max(1),
            world_size: world_size.max(1),
            dataloader_drop_last: args.dataloader_drop_last,
        }
    }

    /// Rows one optimizer step takes over all processes (the global batch).
    pub(crate) fn rows_per_step(&self) -> usize {
        self.per_device_train_batch_size * self.gradient_accumulation_steps * self.world_size
    }

    /// Rows one micro-batch takes over all processes.
    pub(crate) fn rows_per_micro_batch(&self) -> usize {
        self.per_device_train_batch_size * self.world_size
    }

    /// Optimizer steps in an epoch of `len` rows (the per-process loader's batches, grouped
    /// by accumulation; the last step takes what is left).
    pub(crate) fn steps_per_epoch(&self, len: usize) -> usize {
        let rows = len.div_ceil(self.world_size);
        let batch = self.per_device_train_batch_size;
        let batches = if self.dataloader_drop_last {
            rows / batch
        } else {
            rows.div_ceil(batch)
        };
        batches.div_ceil(self.gradient_accumulation_steps).max(1)
    }
}

/// A point in the run: an epoch, and the rows of its order already consumed by all
/// processes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) epoch: usize,
    pub(crate) consumed_rows: usize,
    /// Optimizer steps before this point, in steps of this run's shape.
    pub(crate) global_step: usize,
}

impl Position {
    /// The start of the run.
    pub(crate) const START: Position = Position {
        epoch: 0,
        consumed_rows: 0,
        global_step: 0,
    };

    /// Where a run of shape `now` resumes a checkpoint taken at `step` by a run of shape
    /// `saved`, on `len` rows. With the same shape the step count is kept; otherwise it is the
    /// whole epochs in this run's steps plus the consumed rows' worth of this run's steps,
    /// rounded down.
    pub(crate) fn resumed(saved: StepShape, now: StepShape, len: usize, step: usize) -> Self {
        let saved_steps = saved.steps_per_epoch(len);
        let epoch = step / saved_steps;
        let consumed_rows = (step % saved_steps) * saved.rows_per_step();
        let global_step = if saved == now {
            step
        } else {
            epoch * now.steps_per_epoch(len) + consumed_rows / now.rows_per_step()
        };
        Self {
            epoch,
            consumed_rows,
            global_step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batch: usize, world_size: usize) -> StepShape {
        StepShape {
            per_device_train_batch_size: batch,
            gradient_accumulation_steps: 1,
            world_size,
            dataloader_drop_last: false,
        }
    }

    #[test]
    fn the_same_shape_resumes_at_its_own_step() {
        // MRPC's 3,668 rows at 8 a step: 459 steps an epoch, the last of 4 rows.
        let one = shape(8, 1);
        assert_eq!(one.steps_per_epoch(3668), 459);
        let at = Position::resumed(one, one, 3668, 500);
        assert_eq!(at.epoch, 1);
        assert_eq!(at.consumed_rows, 41 * 8);
        assert_eq!(at.global_step, 500);
        // Two processes of 4 split the same epoch into the same 459 steps.
        let two = shape(4, 2);
        assert_eq!(two.steps_per_epoch(3668), 459);
        assert_eq!(Position::resumed(two, two, 3668, 500), at);
    }

    #[test]
    fn another_world_size_counts_the_rows_seen() {
        let (one, two) = (shape(8, 1), shape(8, 2));
        assert_eq!(two.steps_per_epoch(3668), 230);
        // 1 → 2: epoch 1 at 328 rows, which is 20 steps of 16 and 8 rows over.
        let at = Position::resumed(one, two, 3668, 500);
        assert_eq!((at.epoch, at.consumed_rows), (1, 328));
        assert_eq!(at.global_step, 230 + 20);
        // 2 → 1: 250 steps of 16 rows are 1 epoch and 20 steps of 16 = 320 rows, 40 steps of 8.
        let back = Position::resumed(two, one, 3668, 250);
        assert_eq!((back.epoch, back.consumed_rows), (1, 320));
        assert_eq!(back.global_step, 459 + 40);
    }

    #[test]
    fn accumulation_and_drop_last_change_the_steps_of_an_epoch() {
        let mut shape = shape(8, 2);
        shape.gradient_accumulation_steps = 3;
        // 1,834 rows a process, 230 batches, 77 steps.
        assert_eq!(shape.steps_per_epoch(3668), 77);
        assert_eq!(shape.rows_per_step(), 48);
        shape.dataloader_drop_last = true;
        // 229 whole batches.
        assert_eq!(shape.steps_per_epoch(3668), 77);
        assert_eq!(
            StepShape::new(&TrainingArguments::new("x"), 4).rows_per_step(),
            32
        );
    }
}
