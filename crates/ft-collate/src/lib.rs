//! Tokenizers, the `dataset.map` step, `DataCollatorWithPadding` and batches as burn tensors.
