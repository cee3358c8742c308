//! Checkpoint folders: written whole or not at all, found again, and rotated.
//!
//! A checkpoint is written into a hidden `.tmp-checkpoint-{step}` folder, every file is flushed
//! to disk, and only then is the folder renamed to `checkpoint-{step}`. A crash at any moment
//! leaves either the complete folder or a temporary one that is never mistaken for a
//! checkpoint and is cleared on the next save. Deleting goes the other way: a folder is first
//! renamed out of the checkpoint namespace, then removed, so a half-deleted checkpoint never
//! looks like a checkpoint either.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::TrainerError;

/// transformers' `PREFIX_CHECKPOINT_DIR`.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";
const TEMP_PREFIX: &str = ".tmp-checkpoint-";
const OLD_PREFIX: &str = ".old-checkpoint-";
const DELETING_PREFIX: &str = ".deleting-checkpoint-";

/// The step of a `checkpoint-{step}` folder name.
fn checkpoint_step(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(CHECKPOINT_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every complete checkpoint in `output_dir`, oldest step first.
pub fn sorted_checkpoints(output_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(output_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| {
            let step = checkpoint_step(entry.file_name().to_str()?)?;
            Some((step, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// `get_last_checkpoint`: the checkpoint with the highest step, if any.
pub fn get_last_checkpoint(output_dir: &Path) -> Option<PathBuf> {
    sorted_checkpoints(output_dir).pop().map(|(_, path)| path)
}

/// The folder of checkpoint `step` in `output_dir`.
pub fn checkpoint_path(output_dir: &Path, step: usize) -> PathBuf {
    output_dir.join(format!("{CHECKPOINT_PREFIX}{step}"))
}

/// Writes checkpoint `step` with `write`, atomically, and returns its path.
pub fn write_checkpoint(
    output_dir: &Path,
    step: usize,
    write: impl FnOnce(&Path) -> Result<(), TrainerError>,
) -> Result<PathBuf, TrainerError> {
    let final_path = checkpoint_path(output_dir, step);
    publish(output_dir, step, &final_path, write).map_err(|error| TrainerError::Checkpoint {
        path: final_path.clone(),
        source: Box::new(error),
    })?;
    Ok(final_path)
}

/// What a failed file-system call on `path` becomes.
fn fail(path: &Path) -> impl FnOnce(std::io::Error) -> TrainerError + '_ {
    move |source| TrainerError::save(path, source)
}

/// Writes into a temporary folder, syncs it, and renames it to `final_path`.
fn publish(
    output_dir: &Path,
    step: usize,
    final_path: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainerError>,
) -> Result<(), TrainerError> {
    std::fs::create_dir_all(output_dir).map_err(fail(output_dir))?;
    clear_leftovers(output_dir);
    let temp = output_dir.join(format!("{TEMP_PREFIX}{step}"));
    std::fs::create_dir_all(&temp).map_err(fail(&temp))?;
    let written = write(&temp).and_then(|()| sync_tree(&temp).map_err(fail(&temp)));
    if let Err(error) = written {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(error);
    }

    // Re-saving a step (an epoch end on a step that was just saved) replaces the old folder.
    // A folder cannot be renamed over a non-empty one, so the old one is moved aside first;
    // `clear_leftovers` moves it back if a crash comes between the two renames.
    let old = output_dir.join(format!("{OLD_PREFIX}{step}"));
    if final_path.exists() {
        std::fs::rename(final_path, &old).map_err(fail(final_path))?;
    }
    std::fs::rename(&temp, final_path).map_err(fail(final_path))?;
    sync_dir(output_dir).map_err(fail(output_dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Removes temporary folders left by an interrupted save, and restores a checkpoint that was
/// moved aside for replacement when its replacement never arrived.
fn clear_leftovers(output_dir: &Path) {
    for entry in std::fs::read_dir(output_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) || name.starts_with(DELETING_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if let Some(step) = name.strip_prefix(OLD_PREFIX) {
            let original = output_dir.join(format!("{CHECKPOINT_PREFIX}{step}"));
            if original.exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::rename(entry.path(), original);
            }
        }
    }
}

fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `rotate_checkpoints`: deletes the oldest checkpoints beyond `limit`, never the newest nor
/// `best`.
pub fn rotate_checkpoints(output_dir: &Path, limit: Option<usize>, best: Option<&Path>) {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return;
    };
    let checkpoints = sorted_checkpoints(output_dir);
    if checkpoints.len() <= limit {
        return;
    }
    let newest = checkpoints.last().map(|(_, p)| p.clone());
    let protected = |path: &PathBuf| Some(path) == newest.as_ref() || best == Some(path.as_path());
    let keep = limit.max(1 + usize::from(best.is_some_and(|b| Some(b) != newest.as_deref())));
    let mut remaining = checkpoints.len();
    for (_, path) in &checkpoints {
        if remaining <= keep {
            break;
        }
        if protected(path) {
            continue;
        }
        tracing::info!(
            "Deleting older checkpoint [{}] due to args.save_total_limit",
            path.display()
        );
        if delete_checkpoint(output_dir, path).is_ok() {
            remaining -= 1;
        }
    }
}

/// Renames the checkpoint out of the checkpoint namespace (atomic), then removes it; a crash
/// in between leaves a hidden folder that the next save clears.
pub(crate) fn delete_checkpoint(output_dir: &Path, path: &Path) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let step = name.strip_prefix(CHECKPOINT_PREFIX).unwrap_or(&name);
    let doomed = output_dir.join(format!("{DELETING_PREFIX}{step}"));
    std::fs::rename(path, &doomed)?;
    std::fs::remove_dir_all(&doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(dir: &Path, step: usize) -> PathBuf {
        write_checkpoint(dir, step, |tmp| {
            std::fs::write(tmp.join("file"), step.to_string()).map_err(|e| TrainerError::io(tmp, e))
        })
        .unwrap()
    }

    #[test]
    fn the_last_checkpoint_is_the_highest_complete_step() {
        let dir = tempfile::tempdir().unwrap();
        assert!(get_last_checkpoint(dir.path()).is_none());
        make(dir.path(), 9);
        make(dir.path(), 10);
        std::fs::create_dir(dir.path().join(".tmp-checkpoint-11")).unwrap();
        std::fs::create_dir(dir.path().join("checkpoint-x")).unwrap();
        assert_eq!(
            get_last_checkpoint(dir.path()).unwrap(),
            dir.path().join("checkpoint-10")
        );
    }

    #[test]
    fn a_failed_write_leaves_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path(), 1);
        let err = write_checkpoint(dir.path(), 2, |_| {
            Err(TrainerError::io(
                "model.safetensors",
                std::io::Error::other("disk full"),
            ))
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "writing checkpoint {}",
                dir.path().join("checkpoint-2").display()
            )
        );
        let cause = std::error::Error::source(&err)
            .and_then(std::error::Error::source)
            .map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("disk full"));
        assert_eq!(sorted_checkpoints(dir.path()).len(), 1);
        assert!(!dir.path().join(".tmp-checkpoint-2").exists());
    }

    #[test]
    fn rewriting_a_step_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path(), 5);
        let path = write_checkpoint(dir.path(), 5, |tmp| {
            std::fs::write(tmp.join("file"), "new").map_err(|e| TrainerError::io(tmp, e))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(path.join("file")).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rotation_keeps_the_newest_and_the_best() {
        let dir = tempfile::tempdir().unwrap();
        for step in [1, 2, 3, 4] {
            make(dir.path(), step);
        }
        let best = dir.path().join("checkpoint-1");
        rotate_checkpoints(dir.path(), Some(2), Some(&best));
        let steps: Vec<usize> = sorted_checkpoints(dir.path())
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(steps, [1, 4]);
        rotate_checkpoints(dir.path(), Some(1), None);
        let steps: Vec<usize> = sorted_checkpoints(dir.path())
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(steps, [4]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }

    #[test]
    fn a_half_deleted_checkpoint_is_not_a_checkpoint_and_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path(), 3);
        // What a kill during rotation leaves: renamed aside, partly removed.
        std::fs::create_dir(dir.path().join(".deleting-checkpoint-1")).unwrap();
        assert_eq!(sorted_checkpoints(dir.path()).len(), 1);
        write_checkpoint(dir.path(), 4, |_| Ok(())).unwrap();
        assert!(!dir.path().join(".deleting-checkpoint-1").exists());
    }
}
