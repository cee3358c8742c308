//! DataCollatorWithPadding and the DataLoader, on real MRPC encodings and the flex device.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};
use ft_collate::{
    AutoTokenizer, CollateError, DataCollatorWithPadding, DataLoader, EncodedDataset, Labels,
    Sampler,
};
use glue_data::{Example, Label, Split, Task};

fn tokenizer() -> AutoTokenizer {
    AutoTokenizer::from_pretrained(test_support::minilm_dir().to_str().unwrap()).unwrap()
}

fn mrpc_dev(tokenizer: &AutoTokenizer) -> EncodedDataset {
    let mut raw =
        glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    EncodedDataset::map(&raw.take("validation").unwrap(), tokenizer).unwrap()
}

fn ints(tensor: Tensor<2, Int>) -> Vec<i64> {
    tensor.into_data().try_into_vec_as::<i64>().unwrap()
}

#[test]
fn pads_to_the_longest_row_on_the_right() {
    let tokenizer = tokenizer();
    let dev = mrpc_dev(&tokenizer);
    let rows: Vec<_> = (0..8).filter_map(|i| dev.row(i)).collect();
    let longest = rows.iter().map(|r| r.input_ids.len()).max().unwrap();
    let collator = DataCollatorWithPadding::new(&tokenizer);
    let device = Device::flex();
    let batch = collator.collate(&rows, &device).unwrap();
    assert_eq!(batch.input_ids.dims(), [8, longest]);
    assert_eq!(batch.attention_mask.dims(), [8, longest]);
    let ids = ints(batch.input_ids);
    let mask = ints(batch.attention_mask);
    let types = ints(
        batch
            .token_type_ids
            .expect("BERT's tokenizer returns token types"),
    );
    for (i, row) in rows.iter().enumerate() {
        let line = &ids[i * longest..(i + 1) * longest];
        let n = row.input_ids.len();
        assert!(
            line[..n]
                .iter()
                .zip(row.input_ids)
                .all(|(a, &b)| *a == i64::from(b))
        );
        assert!(
            line[n..]
                .iter()
                .all(|&id| id == i64::from(tokenizer.pad_token_id()))
        );
        assert!(mask[i * longest..i * longest + n].iter().all(|&m| m == 1));
        assert!(
            mask[i * longest + n..(i + 1) * longest]
                .iter()
                .all(|&m| m == 0)
        );
        assert!(
            types[i * longest + n..(i + 1) * longest]
                .iter()
                .all(|&t| t == 0)
        );
    }
    let Some(Labels::Class(labels)) = batch.labels else {
        panic!("MRPC labels are classes");
    };
    let labels = labels.into_data().try_into_vec_as::<i64>().unwrap();
    let expected: Vec<i64> = rows
        .iter()
        .map(|r| match r.label {
            Some(Label::Class(c)) => i64::from(c),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(labels, expected);
}

#[test]
fn pad_to_multiple_of_rounds_up() {
    let tokenizer = tokenizer();
    let dev = mrpc_dev(&tokenizer);
    let rows: Vec<_> = (0..3).filter_map(|i| dev.row(i)).collect();
    let longest = rows.iter().map(|r| r.input_ids.len()).max().unwrap();
    let collator = DataCollatorWithPadding::new(&tokenizer)
        .with_pad_to_multiple_of(8)
        .unwrap();
    let padded = collator.pad(&rows).unwrap();
    assert_eq!(padded.seq_len, longest.div_ceil(8) * 8);
    assert!(padded.seq_len > longest || longest % 8 == 0);
    assert!(
        DataCollatorWithPadding::new(&tokenizer)
            .with_pad_to_multiple_of(0)
            .is_err()
    );
    assert!(
        collator
            .to_string()
            .starts_with("DataCollatorWithPadding(tokenizer=BertTokenizerFast(")
    );
}

#[test]
fn regression_labels_are_float_and_unlabelled_rows_have_none() {
    let tokenizer = tokenizer();
    let features = Task::Stsb.features();
    let example = |label| Example {
        idx: 0,
        text_a: "a".into(),
        text_b: Some("b".into()),
        label,
    };
    let split = Split::from_examples(
        "validation",
        features,
        [
            example(Some(Label::Score(4.5))),
            example(Some(Label::Score(0.25))),
        ],
    )
    .unwrap();
    let encoded = EncodedDataset::map(&split, &tokenizer).unwrap();
    let rows: Vec<_> = encoded.rows().collect();
    let batch = DataCollatorWithPadding::new(&tokenizer)
        .collate(&rows, &Device::flex())
        .unwrap();
    let Some(Labels::Score(scores)) = batch.labels else {
        panic!("STS-B labels are float");
    };
    assert_eq!(
        scores.into_data().try_into_vec_as::<f32>().unwrap(),
        [4.5, 0.25]
    );

    let split = Split::from_examples(
        "test",
        Task::Stsb.features(),
        [example(None), example(Some(Label::Score(1.0)))],
    )
    .unwrap();
    let encoded = EncodedDataset::map(&split, &tokenizer).unwrap();
    let collator = DataCollatorWithPadding::new(&tokenizer);
    let first: Vec<_> = encoded.rows().take(1).collect();
    assert!(collator.pad(&first).unwrap().labels.is_none());
    let both: Vec<_> = encoded.rows().collect();
    assert!(matches!(
        collator.pad(&both),
        Err(CollateError::MixedLabels { .. })
    ));
}

#[test]
fn a_loader_epoch_yields_every_row_once_in_a_seeded_order() {
    let tokenizer = tokenizer();
    let dev = Arc::new(mrpc_dev(&tokenizer));
    let collator = DataCollatorWithPadding::new(&tokenizer);
    let loader = DataLoader::new(
        dev.clone(),
        collator.clone(),
        Sampler::Random { seed: 42 },
        8,
        false,
    )
    .unwrap();
    assert_eq!(loader.len(), 51);
    let device = Device::flex();
    let mut seen: Vec<u32> = loader
        .iter(0, 0, &device)
        .flat_map(|batch| batch.unwrap().idx)
        .collect();
    let order = seen.clone();
    seen.sort();
    assert_eq!(seen, (0..408).collect::<Vec<u32>>());
    let again: Vec<u32> = loader
        .iter(0, 0, &device)
        .flat_map(|b| b.unwrap().idx)
        .collect();
    assert_eq!(again, order, "the same seed and epoch give the same order");
    let next: Vec<u32> = loader
        .iter(1, 0, &device)
        .flat_map(|b| b.unwrap().idx)
        .collect();
    assert_ne!(next, order, "each epoch reshuffles");

    // Resuming mid-epoch after 80 rows continues with exactly the rows not yet seen.
    assert_eq!(loader.len_after(80), 41);
    let resumed: Vec<u32> = loader
        .iter(0, 80, &device)
        .flat_map(|b| b.unwrap().idx)
        .collect();
    assert_eq!(resumed, order[80..]);

    // drop_last drops the short final batch; stopping early stops the worker cleanly.
    let dropping = DataLoader::new(dev, collator, Sampler::Sequential, 8, true).unwrap();
    assert_eq!(dropping.len(), 51);
    let mut iter = dropping.iter(0, 0, &device);
    let first = iter.next().unwrap().unwrap();
    assert_eq!(first.idx, (0..8).collect::<Vec<u32>>());
    drop(iter);
}

#[test]
fn shards_of_an_epoch_interleave_into_the_single_process_order() {
    let tokenizer = tokenizer();
    let dev = Arc::new(mrpc_dev(&tokenizer));
    let collator = DataCollatorWithPadding::new(&tokenizer);
    let loader = |shard| {
        DataLoader::new(
            dev.clone(),
            collator.clone(),
            Sampler::Random { seed: 42 },
            4,
            false,
        )
        .unwrap()
        .with_shard(shard)
    };
    let device = Device::flex();
    let rows = |loader: DataLoader| -> Vec<u32> {
        loader
            .iter(0, 0, &device)
            .flat_map(|batch| batch.unwrap().idx)
            .collect()
    };
    let whole = rows(loader(ft_collate::Shard::WHOLE));
    // 408 rows over 3 ranks: 136 each, 34 batches of 4, no padding.
    let shares: Vec<Vec<u32>> = (0..3)
        .map(|rank| rows(loader(ft_collate::Shard::new(rank, 3).unwrap())))
        .collect();
    for share in &shares {
        assert_eq!(share.len(), 136);
    }
    assert_eq!(loader(ft_collate::Shard::new(0, 3).unwrap()).len(), 34);
    // Rank r's local row i is the global row i·N + r of the one-process order.
    let interleaved: Vec<u32> = (0..136)
        .flat_map(|i| shares.iter().map(move |share| share[i]))
        .collect();
    assert_eq!(interleaved, whole);

    // 408 rows over 5 ranks: 82 each, the last two ranks padded with the order's first rows.
    let last = rows(loader(ft_collate::Shard::new(4, 5).unwrap()));
    assert_eq!(last.len(), 82);
    assert_eq!(last[81], whole[1]);
}
