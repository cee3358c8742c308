//! The zip container of `torch.save`, as PyTorch's `PyTorchStreamWriter` writes it through
//! miniz: every record stored uncompressed, its data aligned to 64 bytes by an `FB` extra field
//! of `Z`s, its CRC and sizes in a data descriptor after it, and zip64 end records after the
//! central directory whatever the archive's size.
//!
//! Records and offsets stay under 4 GiB: past that, torch adds zip64 fields to the local
//! headers, which this writer does not, so it refuses instead ([`TorchSaveError::TooLarge`]).

use std::io::Write;

use super::TorchSaveError;

/// `kFieldAlignment` in torch's `inline_container.cc`.
pub const ALIGNMENT: u64 = 64;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
/// Bit 3 (sizes in a data descriptor) and bit 11 (UTF-8 names), as miniz sets them.
const FLAGS: u16 = 0x0808;
const LOCAL_HEADER_LEN: u64 = 30;
/// The `FB` tag and its length before the padding.
const PADDING_HEADER_LEN: u64 = 4;

/// One record, for the central directory.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its name in the archive.
    pub name: String,
    /// Its local header's offset.
    offset: u32,
    /// CRC-32 of its data.
    pub crc: u32,
    /// Its data's length.
    size: u32,
}

/// Writes records one after another, then the directory.
pub struct ArchiveWriter<W: Write> {
    out: W,
    position: u64,
    records: Vec<Record>,
}

impl<W: Write> ArchiveWriter<W> {
    /// An empty archive written to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            position: 0,
            records: Vec::new(),
        }
    }

    /// The records written so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Writes one record: its local header with the padding that aligns `data`, `data`, and
    /// its data descriptor.
    pub fn write_record(&mut self, name: &str, data: &[u8]) -> Result<(), TorchSaveError> {
        let end = self.position + LOCAL_HEADER_LEN + name.len() as u64 + data.len() as u64;
        let too_large = || TorchSaveError::TooLarge {
            record: name.to_string(),
            end,
        };
        let offset = u32::try_from(self.position).map_err(|_| too_large())?;
        let size = u32::try_from(data.len()).map_err(|_| too_large())?;
        let name_len = u16::try_from(name.len()).map_err(|_| too_large())?;
        let padding = padding(self.position, name.len());
        let crc = crc32fast::hash(data);

        let mut header = Vec::with_capacity(LOCAL_HEADER_LEN as usize + name.len() + 68);
        header.extend(LOCAL_HEADER.to_le_bytes());
        // Version needed, flags, method (stored), time and date: as miniz writes them.
        header.extend(0u16.to_le_bytes());
        header.extend(FLAGS.to_le_bytes());
        header.extend([0; 6]);
        // CRC and sizes follow the data, in the descriptor.
        header.extend([0; 12]);
        header.extend(name_len.to_le_bytes());
        header.extend((padding as u16 + PADDING_HEADER_LEN as u16).to_le_bytes());
        header.extend(name.as_bytes());
        header.extend(b"FB");
        header.extend((padding as u16).to_le_bytes());
        header.resize(header.len() + padding, b'Z');
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        let mut descriptor = Vec::with_capacity(16);
        descriptor.extend(DATA_DESCRIPTOR.to_le_bytes());
        descriptor.extend(crc.to_le_bytes());
        descriptor.extend(size.to_le_bytes());
        descriptor.extend(size.to_le_bytes());
        self.out.write_all(&descriptor)?;

        self.position += (header.len() + data.len() + descriptor.len()) as u64;
        self.records.push(Record {
            name: name.to_string(),
            offset,
            crc,
            size,
        });
        Ok(())
    }

    /// Writes the central directory and the end records, and hands back the output.
    pub fn finish(mut self) -> Result<W, TorchSaveError> {
        let directory_offset = self.position;
        let mut directory = Vec::new();
        for record in &self.records {
            directory.extend(CENTRAL_HEADER.to_le_bytes());
            // Made by, version needed, flags, method, time, date.
            directory.extend([0; 4]);
            directory.extend(FLAGS.to_le_bytes());
            directory.extend([0; 6]);
            directory.extend(record.crc.to_le_bytes());
            directory.extend(record.size.to_le_bytes());
            directory.extend(record.size.to_le_bytes());
            directory.extend((record.name.len() as u16).to_le_bytes());
            // Extra and comment lengths, disk, internal and external attributes.
            directory.extend([0; 12]);
            directory.extend(record.offset.to_le_bytes());
            directory.extend(record.name.as_bytes());
        }
        let zip64_end_offset = directory_offset + directory.len() as u64;
        let entries = self.records.len() as u64;
        let mut end = Vec::with_capacity(98);
        end.extend(ZIP64_END.to_le_bytes());
        // The record's size after this field, then made by (3.0, Unix) and needed (4.5).
        end.extend(44u64.to_le_bytes());
        end.extend(0x031eu16.to_le_bytes());
        end.extend(0x002du16.to_le_bytes());
        end.extend([0; 8]);
        end.extend(entries.to_le_bytes());
        end.extend(entries.to_le_bytes());
        end.extend((directory.len() as u64).to_le_bytes());
        end.extend(directory_offset.to_le_bytes());
        end.extend(ZIP64_LOCATOR.to_le_bytes());
        end.extend(0u32.to_le_bytes());
        end.extend(zip64_end_offset.to_le_bytes());
        end.extend(1u32.to_le_bytes());
        end.extend(END.to_le_bytes());
        end.extend([0; 4]);
        let entries16 = u16::try_from(entries).unwrap_or(u16::MAX);
        end.extend(entries16.to_le_bytes());
        end.extend(entries16.to_le_bytes());
        end.extend((directory.len() as u32).to_le_bytes());
        end.extend(
            u32::try_from(directory_offset)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        end.extend(0u16.to_le_bytes());
        self.out.write_all(&directory)?;
        self.out.write_all(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Bytes of `Z` after the `FB` tag that put a record's data on a multiple of
/// [`ALIGNMENT`], for a local header at `offset` with a name of `name_len` bytes (torch's
/// `getPadding`, below 4 GiB).
fn padding(offset: u64, name_len: usize) -> usize {
    let start = offset + LOCAL_HEADER_LEN + name_len as u64 + PADDING_HEADER_LEN;
    ((ALIGNMENT - start % ALIGNMENT) % ALIGNMENT) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    #[test]
    fn every_records_data_starts_on_a_64_byte_boundary() {
        let mut zip = ArchiveWriter::new(Vec::new());
        let records: [(&str, &[u8]); 4] = [
            ("x/data.pkl", &[1; 252]),
            ("x/.format_version", b"1"),
            ("x/data/0", &[2; 12]),
            ("a-much-longer-name/data/1234567", &[3; 64]),
        ];
        for (name, data) in records {
            zip.write_record(name, data).unwrap();
        }
        let written: Vec<Record> = zip.records().to_vec();
        let bytes = zip.finish().unwrap();
        for (record, (name, data)) in written.iter().zip(records) {
            let at = record.offset as usize;
            assert_eq!(u32_at(&bytes, at), LOCAL_HEADER, "{name}");
            let name_len = u16::from_le_bytes([bytes[at + 26], bytes[at + 27]]) as usize;
            let extra_len = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
            let start = at + 30 + name_len + extra_len;
            assert_eq!(start % 64, 0, "{name}");
            assert_eq!(&bytes[start..start + data.len()], data, "{name}");
            assert_eq!(&bytes[at + 30 + name_len..at + 32 + name_len], b"FB");
            let descriptor = start + data.len();
            assert_eq!(u32_at(&bytes, descriptor), DATA_DESCRIPTOR);
            assert_eq!(u32_at(&bytes, descriptor + 4), crc32fast::hash(data));
            assert_eq!(u32_at(&bytes, descriptor + 8), data.len() as u32);
        }
        // The end record closes the file and counts every record.
        let end = bytes.len() - 22;
        assert_eq!(u32_at(&bytes, end), END);
        assert_eq!(u16::from_le_bytes([bytes[end + 8], bytes[end + 9]]), 4);
    }

    #[test]
    fn padding_matches_torchs_first_record() {
        // torch.save(..., "x.pt"): `x/data.pkl` at 0 has 20 bytes of `Z` (30 + 10 + 4 + 20 = 64).
        assert_eq!(padding(0, "x/data.pkl".len()), 20);
        assert_eq!(padding(0, 30), 0);
    }
}
