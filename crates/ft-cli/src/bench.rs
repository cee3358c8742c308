//! `bert-ft bench …`: single measurements for `cargo xtask bench`, one JSON object on stdout.
//! The xtask runs them interleaved with the same work in Python and takes medians.
//!
//! `bench train` and `bench allreduce` also run as several processes under `mpirun`; rank 0
//! alone prints the result, so that the xtask still reads one JSON line.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use bench_report::{AllReduceResult, GemmResult, StepResult, TokenizeResult, TrainResult};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, Subcommand};
use ft_bert::prelude::*;
use ft_bert::{Architecture, AttentionImpl, BertConfig};
use ft_collate::{
    AutoTokenizer, DataCollatorWithPadding, EncodedDataset, PaddedBatch, TokenizerOptions,
};
use ft_trainer::distributed::ProcessGroup;
use ft_trainer::model_input;

use crate::backend::Backend;
use glue_data::{DataSource, Task};

/// Which measurement to take.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Pairs per second of tokenizing a split (the `dataset.map` step).
    Tokenize(TokenizeArgs),
    /// Milliseconds per training step and per inference batch.
    Step(StepArgs),
    /// The Trainer's throughput, time to first step and memory (also under `mpirun`).
    Train(TrainArgs),
    /// Milliseconds of one optimizer step's gradient all-reduce across the processes of an
    /// MPI job.
    #[command(name = "allreduce")]
    AllReduce(AllReduceArgs),
}

/// Arguments of `bench tokenize`.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// Model folder or Hub id whose tokenizer to use.
    #[arg(long)]
    model: String,
    /// GLUE TSV folder, parquet folder or Hub dataset id.
    #[arg(long)]
    dataset: String,
    /// GLUE task.
    #[arg(long, default_value = "mrpc")]
    task: Task,
    /// Split to tokenize.
    #[arg(long, default_value = "train")]
    split: String,
}

impl BenchCommand {
    /// The backend the measurement runs on, if it computes on one.
    pub fn backend(&self) -> Option<Backend> {
        match self {
            BenchCommand::Tokenize(_) => None,
            BenchCommand::Step(args) => Some(args.workload.backend),
            BenchCommand::Train(args) => Some(args.workload.backend),
            BenchCommand::AllReduce(args) => Some(args.backend),
        }
    }
}

/// Runs one measurement and prints its JSON (on rank 0 alone when `group` has several
/// processes).
pub fn run(command: &BenchCommand, group: &ProcessGroup) -> Result<()> {
    if group.is_distributed()
        && matches!(command, BenchCommand::Tokenize(_) | BenchCommand::Step(_))
    {
        // They measure one process's work; N copies would only slow each other down.
        anyhow::bail!(
            "`bench tokenize` and `bench step` run as one process; this is one of {}",
            group.world_size()
        );
    }
    match command {
        BenchCommand::Tokenize(args) => tokenize(args),
        BenchCommand::Step(args) => step(args),
        BenchCommand::Train(args) => train(args, group),
        BenchCommand::AllReduce(args) => all_reduce(args, group),
    }
}

fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let mut raw = DataSource::from_arg(&args.dataset)
        .load(args.task)
        .with_context(|| format!("loading {}", args.dataset))?;
    let split = raw.take(&args.split)?;
    let tokenizer = AutoTokenizer::from_pretrained(&args.model)?;
    let start = Instant::now();
    let encoded = EncodedDataset::map(&split, &tokenizer)?;
    let seconds = start.elapsed().as_secs_f64();
    print(&TokenizeResult {
        pairs: encoded.len(),
        tokens: Some(encoded.num_tokens()),
        seconds,
        pairs_per_second: encoded.len() as f64 / seconds,
        threads: rayon_threads(),
    })
}

/// Prints a result as the one JSON line `cargo xtask bench` reads.
fn print(result: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(result)?);
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The model, data and backend that `bench step` and `bench train` run on.
#[derive(Args, Debug)]
pub struct Workload {
    /// A model folder (real weights), or `bert-base`, `distilbert-base`, `roberta-base` or
    /// `tiny-bert` (2 layers of hidden size 64) for that shape with random weights.
    #[arg(long)]
    model: String,
    /// Tokenizer folder (for `bert-base`, any bert-base-uncased vocabulary).
    #[arg(long)]
    tokenizer: String,
    /// GLUE MRPC folder (`bench step` batches its first train pairs, in order).
    #[arg(long)]
    dataset: String,
    /// Backend to run on.
    #[arg(long, default_value = "flex")]
    backend: Backend,
}

impl Workload {
    /// The tokenizer, and MRPC's raw splits. For a DistilBERT or RoBERTa shape, which reads
    /// bert-base-uncased's vocabulary here, the tokenizer returns no token types, as theirs.
    fn data(&self) -> Result<(AutoTokenizer, glue_data::DatasetDict)> {
        let options = TokenizerOptions {
            model_input_names: shape_config(&self.model)?
                .filter(|config| config.architecture != Architecture::Bert)
                .map(|_| vec!["input_ids".to_string(), "attention_mask".to_string()]),
            ..TokenizerOptions::default()
        };
        let tokenizer = AutoTokenizer::from_pretrained_with(&self.tokenizer, &options)?;
        let raw = DataSource::from_arg(&self.dataset)
            .load(Task::Mrpc)
            .with_context(|| format!("loading {}", self.dataset))?;
        Ok((tokenizer, raw))
    }

    /// The classifier on `device`: the folder's weights, or bert-base's shape at random.
    fn model(&self, device: &burn::tensor::Device) -> Result<AutoModelForSequenceClassification> {
        classifier(&self.model, device)
    }
}

/// The `config.json` of each shape `bench` builds at random, as the Hub's checkpoints have
/// it (what differs from our BERT defaults).
const SHAPES: [(&str, &str); 4] = [
    ("bert-base", r#"{"model_type": "bert"}"#),
    // Small enough that a step is bound by dispatch and launch overhead, not arithmetic.
    (
        "tiny-bert",
        r#"{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 256}"#,
    ),
    (
        "distilbert-base",
        r#"{"model_type": "distilbert", "n_layers": 6}"#,
    ),
    (
        "roberta-base",
        r#"{"model_type": "roberta", "vocab_size": 50265, "max_position_embeddings": 514,
            "type_vocab_size": 1, "pad_token_id": 1, "layer_norm_eps": 1e-5}"#,
    ),
];

/// The classifier `model` names on `device`: a folder's weights, or one of [`SHAPES`] at
/// random.
fn classifier(
    model: &str,
    device: &burn::tensor::Device,
) -> Result<AutoModelForSequenceClassification> {
    Ok(match shape_config(model)? {
        Some(config) => AutoModelForSequenceClassification::from_config(&config, 42, device)?,
        None => AutoModelForSequenceClassification::from_pretrained(model, 2, device)?,
    })
}

/// The config of the shape `model` names, or `None` for a folder.
fn shape_config(model: &str) -> Result<Option<BertConfig>> {
    SHAPES
        .iter()
        .find(|(name, _)| *name == model)
        .map(|(name, json)| {
            Ok(BertConfig::from_json_bytes(
                Path::new(name),
                json.as_bytes(),
            )?)
        })
        .transpose()
}

/// `backend` for this process: under `mpirun`, a GPU backend given without an index takes
/// the device of the process's rank on its machine, as `finetune` does.
fn process_backend(backend: Backend, group: &ProcessGroup) -> Backend {
    if group.is_distributed() {
        backend.for_local_rank(group.local_rank())
    } else {
        backend
    }
}

/// Arguments of `bench step`.
#[derive(Args, Debug)]
pub struct StepArgs {
    #[command(flatten)]
    workload: Workload,
    /// Rows per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Rows of the timed matrix products (about a batch's tokens).
    #[arg(long, default_value_t = 512)]
    gemm_rows: usize,
    /// Everything under bf16 autocast (on flex, the linear layers' products in bf16).
    #[arg(long)]
    bf16: bool,
}

/// Times training steps (forward, backward, AdamW) and inference batches on real MRPC
/// batches, and inference with both attention paths; with `--bf16`, under autocast.
fn step(args: &StepArgs) -> Result<()> {
    if args.bf16 {
        ft_bert::autocast::autocast_bf16(|| step_in_precision(args))
    } else {
        step_in_precision(args)
    }
}

/// [`step`] in the calling thread's precision.
fn step_in_precision(args: &StepArgs) -> Result<()> {
    let device = args.workload.backend.device()?;
    let (tokenizer, mut raw) = args.workload.data()?;
    let train = EncodedDataset::map(&raw.take("train")?, &tokenizer)?;
    let collator = DataCollatorWithPadding::new(&tokenizer);
    let total = args.warmup + args.steps;
    let batches: Vec<_> = (0..total)
        .map(|i| {
            let rows: Vec<_> = (i * args.batch_size..(i + 1) * args.batch_size)
                .filter_map(|r| train.row(r))
                .collect();
            collator.pad(&rows)
        })
        .collect::<Result<_, _>>()?;

    let model = args.workload.model(&device.clone().autodiff())?;
    let (model, train) = time_training(model, &batches, args.warmup, &device)?;
    let eval = model.valid();
    let auto = time_inference(&eval, &batches, args.warmup, &device)?;
    let mut fused_model = eval.clone();
    fused_model.set_attention_impl(AttentionImpl::Fused);
    let fused = time_inference(&fused_model, &batches, args.warmup, &device)?;
    let [forward, backward, update] = train;

    let tokens: usize = batches[args.warmup..].iter().map(|b| b.num_tokens).sum();
    let padded: usize = batches[args.warmup..]
        .iter()
        .map(|b| b.batch_size * b.seq_len)
        .sum();
    let rows = (args.steps * args.batch_size) as f64;
    let config = eval.config();
    let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
    print(&StepResult {
        model: args.workload.model.clone(),
        batch_size: args.batch_size,
        steps: args.steps,
        mean_padded_len: Some(padded as f64 / rows),
        mean_tokens: Some(tokens as f64 / rows),
        forward_ms: median(&forward),
        backward_ms: median(&backward),
        optimizer_ms: median(&update),
        step_ms: median(&forward) + median(&backward) + median(&update),
        infer_ms: median(&auto),
        infer_fused_attention_ms: Some(median(&fused)),
        gemm: vec![
            gemm(args.gemm_rows, hidden, intermediate, &device)?,
            gemm(args.gemm_rows, intermediate, hidden, &device)?,
        ],
        simd: Some(simd_paths(&args.workload.backend)),
        threads: rayon_threads(),
        bf16: args.bf16,
    })
}

/// Milliseconds of each training step's forward pass, backward pass and AdamW update on
/// `batches`, after the first `warmup`; and the trained model.
fn time_training(
    mut model: AutoModelForSequenceClassification,
    batches: &[PaddedBatch],
    warmup: usize,
    device: &burn::tensor::Device,
) -> Result<(AutoModelForSequenceClassification, [Vec<f64>; 3])> {
    let train_device = device.clone().autodiff();
    // The Trainer's optimizer with TrainingArguments' defaults, so that the AdamW column
    // times what training runs.
    let defaults = ft_trainer::TrainingArguments::new(std::env::temp_dir());
    let mut optimizer =
        ft_trainer::AdamW::for_device(ft_trainer::AdamWConfig::from(&defaults), device);
    let (mut forward, mut backward, mut update) = (Vec::new(), Vec::new(), Vec::new());
    for (i, batch) in batches.iter().enumerate() {
        let batch = batch.clone().to_device(&train_device);
        let t0 = Instant::now();
        let loss = model
            .forward(&model_input(&batch)?)?
            .loss
            .context("MRPC batches have labels")?;
        sync(device)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(device)?;
        let t2 = Instant::now();
        model = optimizer.step(model, grads, defaults.learning_rate, 1.0);
        sync(device)?;
        let t3 = Instant::now();
        if i >= warmup {
            forward.push(ms(t1 - t0));
            backward.push(ms(t2 - t1));
            update.push(ms(t3 - t2));
        }
    }
    Ok((model, [forward, backward, update]))
}

/// Milliseconds of each inference batch of `batches`, after the first `warmup`.
fn time_inference(
    model: &AutoModelForSequenceClassification,
    batches: &[PaddedBatch],
    warmup: usize,
    device: &burn::tensor::Device,
) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let batch = batch.clone().to_device(device);
        let t0 = Instant::now();
        let logits = model.forward(&model_input(&batch)?)?.logits;
        // A host read, so that lazy backends really compute.
        let _ = logits.into_data();
        if i >= warmup {
            times.push(ms(t0.elapsed()));
        }
    }
    Ok(times)
}

/// Times `[m, k] × [k, n]` alone on `device`, as the model's linear layers run it (on flex,
/// our tiles, in bf16 under autocast), the bias included.
fn gemm(m: usize, k: usize, n: usize, device: &burn::tensor::Device) -> Result<GemmResult> {
    let x = Tensor::<2>::random([m, k], Distribution::Default, device);
    let layer = burn::nn::LinearConfig::new(k, n).init(device);
    let mut times = Vec::new();
    for i in 0..23 {
        let t0 = Instant::now();
        let product = ft_bert::ops::linear(&layer, x.clone());
        sync(device)?;
        let elapsed = ms(t0.elapsed());
        drop(product);
        // The first products page in their buffers and warm the caches.
        if i >= 3 {
            times.push(elapsed);
        }
    }
    Ok(GemmResult::new(m, k, n, median(&times)))
}

/// The SIMD code this build runs here: our element-wise kernels' level and the GEMM's.
fn simd_paths(backend: &Backend) -> String {
    let kernels = ft_bert::simd::simd_level();
    // The gemm crate behind flex picks AVX-512 at run time only when built with `x86-v4`.
    let gemm = if cfg!(feature = "x86-v4") && kernels.starts_with("x86-64-v4") {
        "AVX-512"
    } else {
        "AVX2 or below"
    };
    match backend.to_string().as_str() {
        "flex" => format!("kernels {kernels}, flex GEMM {gemm}"),
        other => format!("kernels {kernels}, GEMM by {other}"),
    }
}

fn sync(device: &burn::tensor::Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The median of `values`, NaN for none (as a measurement that did not happen).
fn median(values: &[f64]) -> f64 {
    bench_report::median(values.iter().copied()).unwrap_or(f64::NAN)
}

/// Arguments of `bench train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    workload: Workload,
    /// Timed steps, from the start of training.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Untimed steps first (0: time what a user waits for, first step included).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Rows per step on each process; the global batch is this times the processes.
    #[arg(long, default_value_t = 8)]
    per_device_train_batch_size: usize,
    /// Train with bfloat16 compute.
    #[arg(long)]
    bf16: bool,
    /// Recompute each encoder layer in the backward pass (`gradient_checkpointing`).
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Each pair's sentences this many times over (a long-sequence shape: MRPC's pairs
    /// are about 50 tokens, 5 times about 250 and up to 500).
    #[arg(long, default_value_t = 1)]
    repeat_text: usize,
    /// Train on burn's own checkpointing instead (`Device::gradient_checkpointing`, the
    /// Balanced strategy: memory-bound operations recomputed, matrix products kept).
    #[arg(long)]
    burn_checkpointing: bool,
    /// Skip the closing evaluation (on long rows it would take longer than the steps).
    #[arg(long)]
    skip_evaluation: bool,
    /// AdamW by tensor operations over flat buffers, as on a GPU, even where the fused host
    /// loop would run (flex, tch-cpu): with `--model tiny-bert` on tch-cpu, a CPU proxy for a
    /// GPU's launch overhead.
    #[arg(long)]
    device_optimizer: bool,
}

/// Records when training starts (as step 0) and when each optimizer step ends.
struct StepClock(std::sync::Arc<std::sync::Mutex<Vec<(usize, Instant)>>>);

impl StepClock {
    fn record(&self, step: usize) {
        if let Ok(mut times) = self.0.lock() {
            times.push((step, Instant::now()));
        }
    }
}

impl ft_trainer::TrainerCallback for StepClock {
    fn name(&self) -> &str {
        "StepClock"
    }

    fn on_train_begin(
        &mut self,
        _: &ft_trainer::TrainingArguments,
        _: &ft_trainer::TrainerState,
        _: &mut ft_trainer::TrainerControl,
    ) -> Result<(), ft_trainer::BoxedError> {
        self.record(0);
        Ok(())
    }

    fn on_step_end(
        &mut self,
        _: &ft_trainer::TrainingArguments,
        state: &ft_trainer::TrainerState,
        _: &mut ft_trainer::TrainerControl,
    ) {
        self.record(state.global_step);
    }
}

/// The Trainer on MRPC for a fixed number of steps, as `python/bench_train.py` runs the
/// Hugging Face Trainer: samples/s from the start of training (after `--warmup` steps, none by
/// default), time to the first step from process start, evaluation samples/s and peak memory.
/// Under `mpirun` every process trains its share data-parallel, and rank 0 reports for all
/// (its own clock, memory and threads; the samples of every process).
fn train(args: &TrainArgs, group: &ProcessGroup) -> Result<()> {
    let device = process_backend(args.workload.backend, group).device()?;
    let (tokenizer, mut raw) = args.workload.data()?;
    let train = repeated(&raw.take("train")?, args.repeat_text)?;
    let validation = repeated(&raw.take("validation")?, args.repeat_text)?;
    let train = EncodedDataset::map(&train, &tokenizer)?;
    let validation = EncodedDataset::map(&validation, &tokenizer)?;
    let tokens_per_row = train.num_tokens() as f64 / train.len() as f64;
    let model = args.workload.model(&device)?;
    let mut training =
        ft_trainer::TrainingArguments::new(std::env::temp_dir().join("bert-ft-bench"));
    training.max_steps = (args.warmup + args.steps) as i64;
    training.save_strategy = ft_trainer::SaveStrategy::No;
    training.logging_strategy = ft_trainer::IntervalStrategy::No;
    training.disable_tqdm = true;
    training.bf16 = args.bf16;
    training.per_device_train_batch_size = args.per_device_train_batch_size;
    training.activation_checkpointing = args.gradient_checkpointing;
    // The Trainer keeps the strategy of a device that already has autodiff.
    let train_device = if args.burn_checkpointing {
        device.clone().autodiff().gradient_checkpointing()
    } else {
        device.clone()
    };
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut trainer = ft_trainer::Trainer::new(model, training, &train_device)?
        .without_console()
        .with_train_dataset(train)
        .with_eval_dataset(validation)
        .with_tokenizer(tokenizer)
        .with_callback(StepClock(times.clone()))
        .with_process_group(group.clone());
    if args.device_optimizer {
        let config = ft_trainer::AdamWConfig::from(trainer.args());
        trainer = trainer.with_optimizer(ft_trainer::AdamW::new(config));
    }
    trainer.train(None)?;
    let eval_samples_per_second = if args.skip_evaluation {
        None
    } else {
        trainer.evaluate()?.get("eval_samples_per_second").copied()
    };
    let times = times
        .lock()
        .map_err(|_| anyhow::anyhow!("step clock poisoned"))?
        .clone();
    let at = |step: usize| times.iter().find(|(s, _)| *s == step).map(|(_, t)| *t);
    let (Some(first), Some(start), Some(end)) =
        (at(1), at(args.warmup), at(args.warmup + args.steps))
    else {
        anyhow::bail!("the run did not reach step {}", args.warmup + args.steps);
    };
    // Every process takes a per-device batch per step, and the steps end together (the
    // all-reduce waits for all), so rank 0's clock times everyone's samples.
    let samples = args.steps * args.per_device_train_batch_size * group.world_size();
    let samples_per_second = samples as f64 / (end - start).as_secs_f64();
    let first_step_seconds = crate::process::start_time()
        .and_then(|started| {
            let elapsed_since_first = first.elapsed();
            std::time::SystemTime::now()
                .checked_sub(elapsed_since_first)?
                .duration_since(started)
                .ok()
        })
        .map(|d| d.as_secs_f64());
    if !group.is_world_process_zero() {
        return Ok(());
    }
    print(&TrainResult {
        train_samples_per_second: samples_per_second,
        train_tokens_per_second: samples_per_second * tokens_per_row,
        first_step_seconds,
        eval_samples_per_second,
        peak_rss_mb: crate::process::peak_rss_mb(),
        steps: args.steps,
        threads: rayon_threads(),
        bf16: args.bf16,
        backend: Some(args.workload.backend.to_string()),
        processes: group.world_size(),
    })
}

/// `split` with each row's texts `times` times over, joined by spaces.
fn repeated(split: &glue_data::Split, times: usize) -> Result<glue_data::Split> {
    if times <= 1 {
        return Ok(split.clone());
    }
    let repeat = |text: &str| vec![text; times].join(" ");
    let examples = split.rows().map(|row| {
        let mut example = row.to_example();
        example.text_a = repeat(&example.text_a);
        example.text_b = example.text_b.as_deref().map(repeat);
        example
    });
    Ok(glue_data::Split::from_examples(
        split.name(),
        split.features().clone(),
        examples,
    )?)
}

/// Arguments of `bench allreduce`.
#[derive(Args, Debug)]
pub struct AllReduceArgs {
    /// A model folder (real weights), or `bert-base` for that shape with random weights.
    #[arg(long)]
    model: String,
    /// Backend the gradients live on (they go through host memory whatever it is).
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Timed all-reduces, after one untimed.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
}

/// Registers a zero gradient for every float parameter, on the device the Trainer keeps its
/// gradients on.
struct ZeroGradients<'a> {
    grads: &'a mut GradientsParams,
    device: &'a burn::tensor::Device,
    parameters: usize,
}

impl ModuleVisitor for ZeroGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param.val().inner().zeros_like().to_device(self.device);
        self.parameters += param.shape().num_elements();
        self.grads.register(param.id, grad);
    }
}

/// Times what one optimizer step adds with several processes: the gradients of every
/// parameter averaged across the group by `average_gradients`, exactly as the Trainer calls
/// it (every parameter with a gradient, the step's loss and FLOs as scalars). The values do
/// not change the cost, so the gradients are zeros.
fn all_reduce(args: &AllReduceArgs, group: &ProcessGroup) -> Result<()> {
    let device = process_backend(args.backend, group).device()?;
    // The Trainer's model lives on the autodiff device and its gradients on the plain one.
    let model = classifier(&args.model, &device.clone().autodiff())?;
    let zeros = || {
        let mut grads = GradientsParams::new();
        let mut zeros = ZeroGradients {
            grads: &mut grads,
            device: &device,
            parameters: 0,
        };
        model.visit(&mut zeros);
        let parameters = zeros.parameters;
        (grads, parameters)
    };
    let mut times = Vec::new();
    let mut parameters = 0;
    for i in 0..=args.iterations {
        // `average_gradients` replaces the gradients it is given, so each call gets fresh ones,
        // made outside the clock.
        let (mut grads, count) = zeros();
        parameters = count;
        let mut scalars = [0.0, 0.0];
        // Start every rank's clock together, so that none times another's set-up.
        group.barrier();
        let t0 = Instant::now();
        ft_trainer::distributed::average_gradients(
            group,
            &model,
            &mut grads,
            &mut scalars,
            &device,
        )
        .context("reading the gradients to the host")?;
        sync(&device)?;
        // The first call pages in the buffers and sets up MPI's connections.
        if i > 0 {
            times.push(ms(t0.elapsed()));
        }
    }
    if !group.is_world_process_zero() {
        return Ok(());
    }
    print(&AllReduceResult {
        parameters,
        megabytes: (parameters * std::mem::size_of::<f32>()) as f64 / 1e6,
        milliseconds: median(&times),
        processes: group.world_size(),
    })
}
