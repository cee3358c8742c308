//! `torch.save` in Rust, for the files transformers' Trainer reads from a checkpoint
//! (`optimizer.pt`, `scheduler.pt`, `rng_state.pth`). No maintained crate writes torch's
//! format; this writes the part of it a state dict needs.
//!
//! A file is a zip archive (see [`zip`]) of records under a folder named after the file's
//! stem, in the order torch 2.9 writes them: `data.pkl` (the pickled object, see [`pickle`]),
//! `.format_version`, `.storage_alignment`, `byteorder`, `data/{key}` (one per tensor
//! storage, its raw little-endian bytes), `version` and `.data/serialization_id`.
//!
//! `torch.load(weights_only=True)`, which transformers uses, accepts only allow-listed
//! globals: the tensors here use `torch._utils._rebuild_tensor_v2`, `torch.*Storage` and
//! `collections.OrderedDict`, all on torch's own list; what else a caller puts in a
//! [`Value::Call`] must be on it too (transformers adds numpy's for `rng_state.pth`).
//!
//! `.data/serialization_id` is 40 digits, as torch's; torch derives it from `std::hash` of
//! the record names and their CRCs, which cannot be reproduced, so this one is an FNV-1a hash
//! of the names and a CRC of the records' CRCs. torch does not read it back.

pub mod pickle;
pub mod zip;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

pub use pickle::{TensorValue, Value};
use zip::ArchiveWriter;

/// Why a torch file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TorchSaveError {
    /// The file could not be created or written.
    #[error("writing the archive")]
    Io(#[from] std::io::Error),

    /// A record would reach past 4 GiB, where torch switches to zip64 local headers.
    #[error(
        "record {record} would end at byte {end}, past the 4 GiB this writer reaches without \
         zip64 local headers"
    )]
    TooLarge {
        /// The record's name in the archive.
        record: String,
        /// Where it would end.
        end: u64,
    },
}

/// The `version` record of a plain pickle (torch's `kProducedFileFormatVersion` for it).
const VERSION: &[u8] = b"3\n";

/// Writes `value` to `path` as `torch.save(value, path)` does.
pub fn save(value: &Value, path: &Path) -> Result<(), TorchSaveError> {
    let pickled = pickle::dumps(value);
    let folder = archive_folder(path);
    let file = File::create(path)?;
    let mut archive = ArchiveWriter::new(BufWriter::new(file));
    archive.write_record(&format!("{folder}/data.pkl"), &pickled.bytes)?;
    archive.write_record(&format!("{folder}/.format_version"), b"1")?;
    let alignment = zip::ALIGNMENT.to_string();
    archive.write_record(
        &format!("{folder}/.storage_alignment"),
        alignment.as_bytes(),
    )?;
    archive.write_record(&format!("{folder}/byteorder"), b"little")?;
    for (key, tensor) in pickled.storages.iter().enumerate() {
        archive.write_record(&format!("{folder}/data/{key}"), &tensor.bytes)?;
    }
    archive.write_record(&format!("{folder}/version"), VERSION)?;
    let id = serialization_id(archive.records());
    archive.write_record(&format!("{folder}/.data/serialization_id"), id.as_bytes())?;
    let writer = archive.finish()?;
    writer.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// The folder torch names the records under: the file's name without its extension.
fn archive_folder(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".to_string())
}

/// 40 digits from the records written so far (see the module's documentation).
fn serialization_id(records: &[zip::Record]) -> String {
    let mut names: u64 = 0xcbf2_9ce4_8422_2325;
    let mut crcs = crc32fast::Hasher::new();
    for record in records {
        for byte in record.name.bytes() {
            names = (names ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        crcs.update(&record.crc.to_le_bytes());
    }
    format!("{names:020}{:020}", crcs.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A nested value with every kind this writer has, the script that rebuilds it in Python,
    /// and the file both are compared through.
    fn nested() -> Value {
        Value::str_dict([
            ("none", Value::None),
            (
                "flags",
                Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            ),
            (
                "ints",
                Value::Tuple(vec![
                    Value::Int(0),
                    Value::Int(255),
                    Value::Int(65_536),
                    Value::Int(-7),
                    Value::Int(1 << 31),
                    Value::Int(-(1 << 40)),
                ]),
            ),
            (
                "floats",
                Value::List(vec![Value::Float(1e-8), Value::Float(-0.5)]),
            ),
            ("text", Value::str("naïve ✓")),
            ("bytes", Value::Bytes(vec![0, 127, 128, 255])),
            (
                "state",
                Value::Dict(vec![
                    (
                        Value::Int(0),
                        Value::str_dict([
                            ("step", Value::Tensor(TensorValue::f32(vec![], &[3.0]))),
                            (
                                "exp_avg",
                                Value::Tensor(TensorValue::f32(
                                    vec![2, 3],
                                    &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                                )),
                            ),
                        ]),
                    ),
                    (Value::Int(1), Value::Tensor(TensorValue::u8(vec![9, 8, 7]))),
                ]),
            ),
        ])
    }

    /// Runs python/check_torch_save.py on `path`; returns its stdout, failing on an error.
    fn check_with_torch(path: &Path) -> String {
        let output = Command::new(test_support::python())
            .arg(test_support::python_script("check_torch_save.py"))
            .arg(path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        stdout
    }

    #[test]
    fn torch_loads_a_nested_value_and_pickles_it_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested.pt");
        save(&nested(), &path).unwrap();
        let report = check_with_torch(&path);
        for line in [
            "loaded with weights_only: equal",
            "data.pkl: identical",
            "records: identical but .data/serialization_id",
            "storages: identical",
        ] {
            assert!(report.contains(line), "{line}\n{report}");
        }
    }

    #[test]
    fn the_archive_holds_torchs_records_in_torchs_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.pt");
        save(&nested(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let names: Vec<String> = central_names(&bytes);
        assert_eq!(
            names,
            [
                "optimizer/data.pkl",
                "optimizer/.format_version",
                "optimizer/.storage_alignment",
                "optimizer/byteorder",
                "optimizer/data/0",
                "optimizer/data/1",
                "optimizer/data/2",
                "optimizer/version",
                "optimizer/.data/serialization_id",
            ]
        );
        // Storages in key order, each on a 64-byte boundary.
        let value = nested();
        let pickled = pickle::dumps(&value);
        assert_eq!(pickled.storages[0].bytes, 3.0f32.to_le_bytes());
        let exp_avg = &pickled.storages[1].bytes;
        let at = bytes.windows(exp_avg.len()).position(|w| w == exp_avg);
        assert_eq!(at.map(|at| at % 64), Some(0));
        let id = serialization_id(&[]);
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }

    /// The record names of the central directory, in order.
    fn central_names(bytes: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
            let start = at + found;
            let len = u16::from_le_bytes([bytes[start + 28], bytes[start + 29]]) as usize;
            names.push(String::from_utf8_lossy(&bytes[start + 46..start + 46 + len]).into());
            at = start + 46 + len;
        }
        names
    }
}
