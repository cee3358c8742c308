//! A bounded walk over a parquet file's thrift structures (the footer and every page header)
//! before the parquet crate decodes them.
//!
//! The parquet crate (60.1.0) skips fields it does not know with a loop that trusts the
//! element count a list or map declares, and for booleans it reads nothing per element. So
//! 1.2 KB declaring lists of 2³¹ booleans keeps it busy for seconds to minutes (74 s in a
//! fuzzing build), and nesting multiplies that; reading page headers, it also skips past the
//! end of the data without noticing, clearing an 8 KiB buffer for every element. This walk
//! reads the bytes as the crate does (known fields by the crate's schema, `schema`; the rest
//! by their claimed type), so that it lands where the crate lands, but refuses a count larger
//! than the bytes left, more zero-width booleans in one footer or column chunk than it has
//! bytes (a conforming writer spends a byte on each), and a known field whose claimed type is
//! not the schema's. Its own cost is one step per byte.

mod compact;
mod schema;

use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;

use compact::{Compact, MAX_DEPTH};

/// Walks the thrift-encoded footer of `source`. Inputs too short to hold a footer, or not
/// ending in `PAR1`, are left for the parquet crate to report.
pub(crate) fn check_footer<R: ChunkReader>(source: &R) -> Result<(), String> {
    let len = source.len();
    if len < 8 {
        return Ok(());
    }
    let tail = source.get_bytes(len - 8, 8).map_err(|e| e.to_string())?;
    if &tail[4..] != b"PAR1" {
        return Ok(());
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let Some(start) = (len - 8).checked_sub(footer_len) else {
        return Ok(());
    };
    let footer = source
        .get_bytes(start, footer_len as usize)
        .map_err(|e| e.to_string())?;
    Compact::new(&footer)
        .known_struct(schema::FILE_META_DATA, MAX_DEPTH)
        .map_err(|e| format!("file metadata: {e}"))
}

/// Walks every page header of every column chunk that `metadata` lists.
pub(crate) fn check_page_headers<R: ChunkReader>(
    source: &R,
    metadata: &ParquetMetaData,
) -> Result<(), String> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, column) in group.columns().iter().enumerate() {
            let where_ = || format!("row group {g}, column {c}");
            // `byte_range` would panic on a negative offset or size.
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let (Ok(start), Ok(len)) = (
                u64::try_from(start),
                u64::try_from(column.compressed_size()),
            ) else {
                return Err(format!(
                    "{}: a negative column chunk offset or size",
                    where_()
                ));
            };
            if start.checked_add(len).is_none_or(|end| end > source.len()) {
                return Err(format!("{}: column chunk lies outside the file", where_()));
            }
            let bytes = source
                .get_bytes(start, len as usize)
                .map_err(|e| format!("{}: {e}", where_()))?;
            // One reader over the whole chunk, so that its budget of zero-width booleans
            // bounds the crate's work over all the chunk's pages together.
            let mut reader = Compact::new(&bytes);
            while reader.remaining() > 0 {
                let offset = reader.position;
                reader
                    .page(MAX_DEPTH)
                    .map_err(|e| format!("{}: page header at byte {offset}: {e}", where_()))?;
            }
        }
    }
    Ok(())
}
