//! `report_to: ["tensorboard"]`: TensorBoard event files, as transformers'
//! `TensorBoardCallback` writes them through torch's `SummaryWriter`.
//!
//! An event file is a sequence of TFRecords (length, masked CRC-32C of the length, data,
//! masked CRC-32C of the data), each holding one `Event` protobuf. The first event names the
//! file format; the others hold a summary: a scalar, or text in the text plugin's tensor form.
//! TensorBoard reads any file named `events.out.tfevents.*` in a run directory.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Local, NaiveDateTime};
use prost::Message;
use serde_json::Value;

use crate::args::TrainingArguments;
use crate::callbacks::TrainerCallback;
use crate::error::BoxedError;
use crate::state::{LogEntry, TrainerControl, TrainerState};

use proto::{DataType, Event, Summary, SummaryMetadata, TensorProto, TensorShapeProto};

/// The variable that, when set, names the directory for event files instead of
/// `output_dir/runs/<date>_<host>`, as in transformers.
pub const LOGGING_DIR_ENV: &str = "TENSORBOARD_LOGGING_DIR";

/// The format every event file declares in its first event.
pub const FILE_VERSION: &str = "brain.Event:2";

/// What TensorBoard's text dashboard looks for in a summary's metadata.
const TEXT_PLUGIN: &str = "text";

/// torch's `add_text` appends this to the tag, so transformers' `args` text is shown as
/// `args/text_summary`; we keep the same tags so that dashboards compare runs of both.
const TEXT_TAG_SUFFIX: &str = "/text_summary";

/// Recorded in the first event, where tensorboard's own writer names itself.
const WRITER_NAME: &str = "ft_trainer::tensorboard";

/// CRC masking constant of the TFRecord format.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Writers made by this process so far: the last part of an event file's name, as
/// tensorboard's global counter, so that two writers opened in the same second (training, then
/// an evaluation) get two files.
static WRITERS_OPENED: AtomicU64 = AtomicU64::new(0);

pub mod proto;

/// Why an event file could not be written. Each names the path; the cause is the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    /// The run directory could not be created.
    #[error("creating TensorBoard log directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// The event file could not be created.
    #[error("creating TensorBoard event file {path}")]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// An event could not be written to the file.
    #[error("writing TensorBoard event file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// The training arguments could not be turned into the JSON shown as text.
    #[error("serialising TrainingArguments for TensorBoard")]
    Arguments(#[source] serde_json::Error),
}

/// An open event file, as torch's `SummaryWriter`: scalars and text at a step. Every event is
/// flushed to the operating system as it is written, so a run that is killed keeps its events.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` (and its parents) and a new event file in it, named as torch names them
    /// (`events.out.tfevents.<unix seconds>.<host>.<pid>.<n>`), and writes the file-version
    /// event.
    pub fn new(dir: &Path) -> Result<Self, TensorBoardError> {
        fs::create_dir_all(dir).map_err(|source| TensorBoardError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = event_file_name(
            unix_time(),
            &hostname(),
            std::process::id(),
            WRITERS_OPENED.fetch_add(1, Ordering::Relaxed),
        );
        let path = dir.join(name);
        // Never append to or truncate another writer's file.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| TensorBoardError::CreateFile {
                path: path.clone(),
                source,
            })?;
        let mut writer = Self {
            path,
            file: BufWriter::new(file),
        };
        writer.write_event(&Event {
            wall_time: unix_time(),
            step: 0,
            what: Some(proto::event::What::FileVersion(FILE_VERSION.into())),
            source_metadata: Some(proto::SourceMetadata {
                writer: WRITER_NAME.into(),
            }),
        })?;
        Ok(writer)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs `value` under `tag` at `step`, in single precision as torch's `add_scalar` does.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<(), TensorBoardError> {
        self.add_value(
            proto::summary::Value {
                tag: tag.into(),
                metadata: None,
                value: Some(proto::summary::value::Value::SimpleValue(value as f32)),
            },
            step,
        )
    }

    /// Logs `text` under `<tag>/text_summary` at `step`, as torch's `add_text` does: a
    /// one-element string tensor for the text plugin, which TensorBoard renders as Markdown.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<(), TensorBoardError> {
        self.add_value(text_value(tag, text), step)
    }

    /// Pushes buffered events to the operating system. Each `add_*` already does; this is
    /// for callers that mirror `SummaryWriter.flush()`.
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.file.flush().map_err(|source| self.write_error(source))
    }

    fn add_value(
        &mut self,
        value: proto::summary::Value,
        step: i64,
    ) -> Result<(), TensorBoardError> {
        self.write_event(&Event {
            wall_time: unix_time(),
            step,
            what: Some(proto::event::What::Summary(Summary { value: vec![value] })),
            source_metadata: None,
        })
    }

    fn write_event(&mut self, event: &Event) -> Result<(), TensorBoardError> {
        let record = tf_record(&event.encode_to_vec());
        self.file
            .write_all(&record)
            .and_then(|()| self.file.flush())
            .map_err(|source| self.write_error(source))
    }

    fn write_error(&self, source: io::Error) -> TensorBoardError {
        TensorBoardError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// The text plugin's form of `text`, as torch's `summary.text` builds it.
fn text_value(tag: &str, text: &str) -> proto::summary::Value {
    let plugin_data = proto::summary_metadata::PluginData {
        plugin_name: TEXT_PLUGIN.into(),
        // `TextPluginData(version=0)` serialises to nothing.
        content: Vec::new(),
    };
    let tensor = TensorProto {
        dtype: DataType::DtString.into(),
        tensor_shape: Some(TensorShapeProto {
            dim: vec![proto::tensor_shape_proto::Dim { size: 1 }],
        }),
        string_val: vec![text.as_bytes().to_vec()],
    };
    proto::summary::Value {
        tag: format!("{tag}{TEXT_TAG_SUFFIX}"),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(plugin_data),
        }),
        value: Some(proto::summary::value::Value::Tensor(tensor)),
    }
}

/// `data` framed as a TFRecord: little-endian length, its masked CRC, the data, its masked
/// CRC.
pub fn tf_record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    record
}

/// The CRC-32C of `data`, masked as TFRecord requires: a CRC stored next to the data it covers
/// would otherwise make CRCs of data that itself holds CRCs degenerate.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(CRC_MASK_DELTA)
}

/// `events.out.tfevents.<seconds, 10 digits>.<host>.<pid>.<n>`, tensorboard's file name.
fn event_file_name(unix_seconds: f64, host: &str, pid: u32, index: u64) -> String {
    format!(
        "events.out.tfevents.{:010}.{host}.{pid}.{index}",
        unix_seconds as u64
    )
}

fn unix_time() -> f64 {
    // A clock before 1970 is a broken clock; a zero wall time still orders events by step.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// `socket.gethostname()`.
fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// transformers' `default_logdir()`, the same as torch's: `runs/<%b%d_%H-%M-%S>_<host>`, in
/// local time (`runs/Dec02_15-33-27_myhost`).
pub fn default_logdir() -> PathBuf {
    Path::new("runs").join(run_name(Local::now().naive_local(), &hostname()))
}

/// `<%b%d_%H-%M-%S>_<host>`: one run's directory name.
fn run_name(time: NaiveDateTime, host: &str) -> String {
    format!("{}_{host}", time.format("%b%d_%H-%M-%S"))
}

/// Where the event files of a training run in `output_dir` go: `$TENSORBOARD_LOGGING_DIR`
/// (with `~` expanded) when set, else `output_dir/runs/<date>_<host>`.
pub fn default_logging_dir(output_dir: &Path) -> PathBuf {
    logging_dir_from_env().unwrap_or_else(|| output_dir.join(default_logdir()))
}

/// `$TENSORBOARD_LOGGING_DIR`, with `~` expanded as Python's `os.path.expanduser` does.
fn logging_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(LOGGING_DIR_ENV).map(|dir| expand_user(&dir, std::env::home_dir()))
}

/// `path` with a leading `~` replaced by `home`. `~user` is left as it is, as `expanduser`
/// leaves it for a user it does not know.
fn expand_user(path: &OsStr, home: Option<PathBuf>) -> PathBuf {
    let path = Path::new(path);
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// transformers' tag for a log key: `eval_x` becomes `eval/x`, `test_x` becomes `test/x`, and
/// anything else `train/<key>`, so that TensorBoard groups each split's metrics.
pub fn rewrite_tag(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("eval_") {
        format!("eval/{rest}")
    } else if let Some(rest) = key.strip_prefix("test_") {
        format!("test/{rest}")
    } else {
        format!("train/{key}")
    }
}

/// transformers' `rewrite_logs`: every key of `logs` through [`rewrite_tag`].
pub fn rewrite_logs(logs: &LogEntry) -> LogEntry {
    logs.iter()
        .map(|(key, value)| (rewrite_tag(key), value.clone()))
        .collect()
}

/// Writes every log to TensorBoard, as transformers' `TensorBoardCallback`: numbers as
/// scalars and strings as text under [`rewrite_tag`]'s tags at the global step, and the
/// training arguments as text when training begins. Only the world's process zero writes.
#[derive(Debug)]
pub struct TensorBoardCallback {
    /// Where event files go; until training begins, only what `$TENSORBOARD_LOGGING_DIR` or
    /// the caller said.
    logging_dir: Option<PathBuf>,
    /// The model's configuration JSON, shown as `model_config` text.
    model_config: Option<String>,
    /// Absent before training begins and after it ends, as transformers' `tb_writer`.
    writer: Option<EventWriter>,
}

impl TensorBoardCallback {
    /// A callback that writes to `$TENSORBOARD_LOGGING_DIR` when set, else to a new
    /// `output_dir/runs/<date>_<host>` when training begins. The variable is read now, as
    /// transformers reads it when the callback is made.
    pub fn new() -> Self {
        Self::in_dir(logging_dir_from_env())
    }

    /// A callback that writes to `dir`, whatever the environment says.
    pub fn with_logging_dir(dir: impl Into<PathBuf>) -> Self {
        Self::in_dir(Some(dir.into()))
    }

    /// `None` picks a new run directory under `output_dir` when training begins.
    fn in_dir(logging_dir: Option<PathBuf>) -> Self {
        Self {
            logging_dir,
            model_config: None,
            writer: None,
        }
    }

    /// Also shows `config` (the model's `config.json`) as `model_config` text when training
    /// begins, as transformers does for a model with a config.
    pub fn with_model_config(mut self, config: impl Into<String>) -> Self {
        self.model_config = Some(config.into());
        self
    }

    /// Where event files go, once known.
    pub fn logging_dir(&self) -> Option<&Path> {
        self.logging_dir.as_deref()
    }

    /// The open writer, opening one in `dir` if there is none.
    fn writer_in(&mut self, dir: &Path) -> Result<&mut EventWriter, TensorBoardError> {
        let writer = match self.writer.take() {
            Some(writer) => writer,
            None => EventWriter::new(dir)?,
        };
        Ok(self.writer.insert(writer))
    }

    fn begin(&mut self, args: &TrainingArguments) -> Result<(), TensorBoardError> {
        // Chosen once: a second `train()` with this callback writes to the same run.
        let dir = self
            .logging_dir
            .get_or_insert_with(|| args.output_dir.join(default_logdir()))
            .clone();
        let model_config = self.model_config.clone();
        let writer = self.writer_in(&dir)?;
        writer.add_text("args", &args_json(args)?, 0)?;
        if let Some(config) = model_config {
            writer.add_text("model_config", &config, 0)?;
        }
        Ok(())
    }

    fn write_logs(&mut self, logs: &LogEntry, step: i64) -> Result<(), TensorBoardError> {
        // Without a writer (an evaluation before any training, or after training ended),
        // transformers opens one in the logging dir if known, else where torch's
        // SummaryWriter defaults to: `runs/<date>_<host>` under the working directory.
        let dir = self.logging_dir.clone().unwrap_or_else(default_logdir);
        let writer = self.writer_in(&dir)?;
        // transformers passes on_log the logs without `step`, which it adds only to
        // log_history; our entry is the log_history one.
        for (key, value) in logs.iter().filter(|(key, _)| key.as_str() != "step") {
            write_log_value(writer, &rewrite_tag(key), value, step)?;
        }
        writer.flush()
    }
}

/// `args.to_json_string()`: two-space-indented JSON, no trailing newline.
fn args_json(args: &TrainingArguments) -> Result<String, TensorBoardError> {
    serde_json::to_string_pretty(args).map_err(TensorBoardError::Arguments)
}

/// One logged value, as transformers' `on_log` treats it: numbers (and booleans, which Python
/// counts as ints) as scalars, strings as text, anything else dropped with a warning.
fn write_log_value(
    writer: &mut EventWriter,
    tag: &str,
    value: &Value,
    step: i64,
) -> Result<(), TensorBoardError> {
    match value {
        Value::Number(number) => {
            if let Some(scalar) = number.as_f64() {
                return writer.add_scalar(tag, scalar, step);
            }
        }
        Value::Bool(flag) => return writer.add_scalar(tag, f64::from(u8::from(*flag)), step),
        Value::String(text) => return writer.add_text(tag, text, step),
        // A non-finite metric reaches the log entry as null (JSON has no NaN).
        Value::Null | Value::Array(_) | Value::Object(_) => {}
    }
    warn_dropped(tag, value);
    Ok(())
}

fn warn_dropped(tag: &str, value: &Value) {
    tracing::warn!(
        "Trainer is attempting to log a value of \"{value}\" for key \"{tag}\" as a scalar. \
         This invocation of Tensorboard's writer.add_scalar() is incorrect so we dropped this \
         attribute."
    );
}

/// `error` and its causes, one after another, for a warning that cannot return the error.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn global_step(state: &TrainerState) -> i64 {
    i64::try_from(state.global_step).unwrap_or(i64::MAX)
}

impl Default for TensorBoardCallback {
    /// [`TensorBoardCallback::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl TrainerCallback for TensorBoardCallback {
    fn name(&self) -> &str {
        "TensorBoardCallback"
    }

    /// Opens the event file and writes the arguments. A run directory that cannot be written
    /// stops training before it starts, rather than losing every log silently.
    fn on_train_begin(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        _: &mut TrainerControl,
    ) -> Result<(), BoxedError> {
        if !state.is_world_process_zero {
            return Ok(());
        }
        self.begin(args).map_err(Into::into)
    }

    /// Writes the log's values. A failure is a warning: on_log cannot stop training, and the
    /// checkpoints and `log_history` still hold every value.
    fn on_log(
        &mut self,
        _: &TrainingArguments,
        state: &TrainerState,
        _: &mut TrainerControl,
        logs: &LogEntry,
    ) {
        if !state.is_world_process_zero {
            return;
        }
        if let Err(error) = self.write_logs(logs, global_step(state)) {
            tracing::warn!("TensorBoard logs not written: {}", error_chain(&error));
        }
    }

    /// Closes the event file; an evaluation after training opens a new one in the same run.
    fn on_train_end(&mut self, _: &TrainingArguments, _: &TrainerState, _: &mut TrainerControl) {
        self.writer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every event of an event file, checking each record's framing and both CRCs with
    /// crc32c directly rather than through [`masked_crc32c`].
    fn read_events(path: &Path) -> Vec<Event> {
        let bytes = fs::read(path).unwrap();
        let mut rest = bytes.as_slice();
        let mut events = Vec::new();
        while !rest.is_empty() {
            let (length, tail) = rest.split_at(8);
            let (length_crc, tail) = tail.split_at(4);
            assert_eq!(unmask(length_crc), crc32c::crc32c(length), "length CRC");
            let length = u64::from_le_bytes(length.try_into().unwrap()) as usize;
            let (data, tail) = tail.split_at(length);
            let (data_crc, tail) = tail.split_at(4);
            assert_eq!(unmask(data_crc), crc32c::crc32c(data), "data CRC");
            events.push(Event::decode(data).unwrap());
            rest = tail;
        }
        events
    }

    fn unmask(stored: &[u8]) -> u32 {
        let masked = u32::from_le_bytes(stored.try_into().unwrap());
        masked.wrapping_sub(0xa282_ead8).rotate_left(15)
    }

    fn event_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn only_value(event: &Event) -> &proto::summary::Value {
        match &event.what {
            Some(proto::event::What::Summary(summary)) => {
                assert_eq!(summary.value.len(), 1);
                &summary.value[0]
            }
            other => panic!("expected a summary, got {other:?}"),
        }
    }

    fn scalar(event: &Event) -> (String, f32, i64) {
        let value = only_value(event);
        match value.value {
            Some(proto::summary::value::Value::SimpleValue(scalar)) => {
                (value.tag.clone(), scalar, event.step)
            }
            ref other => panic!("expected a scalar, got {other:?}"),
        }
    }

    fn text(event: &Event) -> (String, String, i64) {
        let value = only_value(event);
        let plugin = value.metadata.as_ref().unwrap().plugin_data.as_ref();
        assert_eq!(plugin.unwrap().plugin_name, "text");
        let Some(proto::summary::value::Value::Tensor(tensor)) = &value.value else {
            panic!("expected a tensor, got {:?}", value.value);
        };
        assert_eq!(tensor.dtype, 7, "DT_STRING");
        assert_eq!(tensor.tensor_shape.as_ref().unwrap().dim[0].size, 1);
        let text = String::from_utf8(tensor.string_val[0].clone()).unwrap();
        (value.tag.clone(), text, event.step)
    }

    fn log(entries: &[(&str, Value)]) -> LogEntry {
        entries
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect()
    }

    #[test]
    fn writer_frames_events_as_tf_records_and_flushes_each() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs").join("a");
        let mut writer = EventWriter::new(&run).unwrap();
        writer.add_scalar("train/loss", 0.693, 5).unwrap();
        writer.add_text("args", "{\"seed\": 42}", 0).unwrap();

        // Read while the writer is open: nothing may wait in a buffer.
        let events = read_events(writer.path());
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].what,
            Some(proto::event::What::FileVersion("brain.Event:2".into()))
        );
        assert!(events[0].wall_time > 1.6e9, "{}", events[0].wall_time);
        assert_eq!(scalar(&events[1]), ("train/loss".into(), 0.693, 5));
        assert_eq!(
            text(&events[2]),
            ("args/text_summary".into(), "{\"seed\": 42}".into(), 0)
        );
    }

    #[test]
    fn event_files_are_named_as_torch_names_them() {
        assert_eq!(
            event_file_name(1_733_153_607.9, "host", 4242, 0),
            "events.out.tfevents.1733153607.host.4242.0"
        );
        let dir = tempfile::tempdir().unwrap();
        let first = EventWriter::new(dir.path()).unwrap();
        let second = EventWriter::new(dir.path()).unwrap();
        assert_ne!(first.path(), second.path());
        let name = first.path().file_name().unwrap().to_string_lossy();
        let pid = format!(".{}.", std::process::id());
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(name.contains(&pid), "{name}");
    }

    #[test]
    fn writer_names_the_directory_it_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "").unwrap();
        let error = EventWriter::new(&blocker.join("run")).unwrap_err();
        assert!(
            matches!(error, TensorBoardError::CreateDir { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("file/run"), "{error}");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn masked_crc_matches_tensorflows() {
        // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c's answers.
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn tags_follow_transformers_rewrite_logs() {
        let logs = log(&[
            ("loss", 0.5.into()),
            ("eval_accuracy", 0.8.into()),
            ("test_f1", 0.7.into()),
            ("train_runtime", 1.0.into()),
        ]);
        let tags: Vec<String> = rewrite_logs(&logs).into_keys().collect();
        assert_eq!(
            tags,
            [
                "eval/accuracy",
                "test/f1",
                "train/loss",
                "train/train_runtime"
            ]
        );
    }

    #[test]
    fn run_directories_are_named_as_transformers_names_them() {
        let time =
            NaiveDateTime::parse_from_str("2024-12-02 15:33:27", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(run_name(time, "myhost"), "Dec02_15-33-27_myhost");
        let dir = default_logdir();
        assert_eq!(dir.parent(), Some(Path::new("runs")));
        let name = dir.file_name().unwrap().to_string_lossy();
        assert!(name.ends_with(&format!("_{}", hostname())), "{name}");
    }

    #[test]
    fn logging_dir_expands_a_leading_tilde_only() {
        let home = Some(PathBuf::from("/home/me"));
        assert_eq!(
            expand_user(OsStr::new("~/tb"), home.clone()),
            Path::new("/home/me/tb")
        );
        assert_eq!(
            expand_user(OsStr::new("~"), home.clone()),
            Path::new("/home/me")
        );
        assert_eq!(
            expand_user(OsStr::new("/x/~"), home.clone()),
            Path::new("/x/~")
        );
        assert_eq!(
            expand_user(OsStr::new("~other/tb"), home),
            Path::new("~other/tb")
        );
        assert_eq!(expand_user(OsStr::new("~/tb"), None), Path::new("~/tb"));
    }

    #[test]
    fn callback_writes_args_and_every_log_at_the_global_step() {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments::new(dir.path());
        let mut state = TrainerState::default();
        let mut control = TrainerControl::default();
        // Not `new()`: the test must not depend on the environment.
        let mut callback = TensorBoardCallback::in_dir(None).with_model_config("{\"a\": 1}");
        callback
            .on_train_begin(&args, &state, &mut control)
            .unwrap();
        let run = callback.logging_dir().unwrap().to_path_buf();
        assert_eq!(run.parent(), Some(dir.path().join("runs").as_path()));

        state.global_step = 10;
        let logs = log(&[
            ("loss", 0.25.into()),
            ("learning_rate", 4e-5.into()),
            ("epoch", 0.5.into()),
            ("step", 10.into()),
            ("note", "hello".into()),
            ("nothing", Value::Null),
        ]);
        callback.on_log(&args, &state, &mut control, &logs);
        state.global_step = 20;
        let logs = log(&[("eval_accuracy", 0.75.into()), ("step", 20.into())]);
        callback.on_log(&args, &state, &mut control, &logs);
        callback.on_train_end(&args, &state, &mut control);

        let files = event_files(&run);
        assert_eq!(files.len(), 1);
        let events = read_events(&files[0]);
        assert_eq!(events.len(), 1 + 2 + 4 + 1, "{events:?}");
        let args_text = text(&events[1]);
        assert_eq!(args_text.0, "args/text_summary");
        assert_eq!(args_text.1, serde_json::to_string_pretty(&args).unwrap());
        assert_eq!(
            text(&events[2]),
            ("model_config/text_summary".into(), "{\"a\": 1}".into(), 0)
        );
        assert_eq!(scalar(&events[3]), ("train/epoch".into(), 0.5, 10));
        assert_eq!(scalar(&events[4]), ("train/learning_rate".into(), 4e-5, 10));
        assert_eq!(scalar(&events[5]), ("train/loss".into(), 0.25, 10));
        assert_eq!(
            text(&events[6]),
            ("train/note/text_summary".into(), "hello".into(), 10)
        );
        assert_eq!(scalar(&events[7]), ("eval/accuracy".into(), 0.75, 20));
    }

    #[test]
    fn evaluation_after_training_opens_a_new_file_in_the_same_run() {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments::new(dir.path());
        let state = TrainerState::default();
        let mut control = TrainerControl::default();
        let mut callback = TensorBoardCallback::with_logging_dir(dir.path().join("tb"));
        callback
            .on_train_begin(&args, &state, &mut control)
            .unwrap();
        callback.on_train_end(&args, &state, &mut control);
        let logs = log(&[("eval_loss", 0.4.into())]);
        callback.on_log(&args, &state, &mut control, &logs);

        let files = event_files(&dir.path().join("tb"));
        assert_eq!(files.len(), 2);
        let events = read_events(&files[1]);
        assert_eq!(scalar(&events[1]), ("eval/loss".into(), 0.4, 0));
    }

    #[test]
    fn only_the_world_process_zero_writes() {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments::new(dir.path());
        let state = TrainerState {
            is_world_process_zero: false,
            ..TrainerState::default()
        };
        let mut control = TrainerControl::default();
        let mut callback = TensorBoardCallback::with_logging_dir(dir.path().join("tb"));
        callback
            .on_train_begin(&args, &state, &mut control)
            .unwrap();
        callback.on_log(&args, &state, &mut control, &log(&[("loss", 1.into())]));
        assert!(!dir.path().join("tb").exists());
    }

    #[test]
    fn a_run_directory_that_cannot_be_made_refuses_training() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "").unwrap();
        let args = TrainingArguments::new(dir.path());
        let mut callback = TensorBoardCallback::with_logging_dir(blocker.join("tb"));
        let error = callback
            .on_train_begin(
                &args,
                &TrainerState::default(),
                &mut TrainerControl::default(),
            )
            .unwrap_err();
        assert!(error.to_string().contains("file/tb"), "{error}");
    }
}
