//! A reader of the thrift compact protocol that only checks and skips, in step with the
//! parquet crate's own reader.

use super::schema::{self, Known, Schema};

/// The parquet crate's limit on nested structures when it skips fields.
pub(super) const MAX_DEPTH: usize = 64;

/// Thrift compact protocol types, by their wire number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    BoolTrue,
    BoolFalse,
    Byte,
    I16,
    I32,
    I64,
    Double,
    Binary,
    List,
    Set,
    Map,
    Struct,
    Uuid,
}

impl Type {
    fn from_wire(nibble: u8) -> Result<Self, String> {
        Ok(match nibble {
            1 => Type::BoolTrue,
            2 => Type::BoolFalse,
            3 => Type::Byte,
            4 => Type::I16,
            5 => Type::I32,
            6 => Type::I64,
            7 => Type::Double,
            8 => Type::Binary,
            9 => Type::List,
            10 => Type::Set,
            11 => Type::Map,
            12 => Type::Struct,
            13 => Type::Uuid,
            other => return Err(format!("unknown thrift type {other}")),
        })
    }
}

/// Refuses a claimed type that the crate would not read as `known`.
fn expect(kind: Type, known: Known, field: Option<i16>) -> Result<(), String> {
    let matches = match known {
        Known::Int => matches!(kind, Type::I16 | Type::I32 | Type::I64),
        Known::Byte => kind == Type::Byte,
        Known::Bool => matches!(kind, Type::BoolTrue | Type::BoolFalse),
        Known::Double => kind == Type::Double,
        Known::Binary => kind == Type::Binary,
        Known::Struct(_) => kind == Type::Struct,
        Known::List(_) => kind == Type::List,
    };
    if matches {
        Ok(())
    } else {
        let what = field.map_or("a list element".to_string(), |id| format!("field {id}"));
        Err(format!(
            "{what} claims type {kind:?} where the schema has {known:?}"
        ))
    }
}

/// The fewest bytes the crate reads for one collection element of `kind`.
fn width(kind: Type) -> usize {
    match kind {
        Type::BoolTrue | Type::BoolFalse => 0,
        _ => 1,
    }
}

/// A reader of the thrift compact protocol that only checks and skips.
pub(super) struct Compact<'a> {
    bytes: &'a [u8],
    pub(super) position: usize,
    /// Collection elements skipped without reading a byte (booleans, as the crate skips them).
    zero_width: usize,
}

impl<'a> Compact<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            position: 0,
            zero_width: 0,
        }
    }

    /// Reads a page header and steps over the page body after it.
    pub(super) fn page(&mut self, depth: usize) -> Result<(), String> {
        // PageHeader's field 3 is `required i32 compressed_page_size`.
        const COMPRESSED_PAGE_SIZE: i16 = 3;
        let mut compressed = None;
        let mut last_id = 0;
        while let Some((kind, id)) = self.field_header(last_id)? {
            last_id = id;
            if id == COMPRESSED_PAGE_SIZE {
                expect(kind, Known::Int, Some(id))?;
                compressed = Some(self.zigzag()?);
            } else {
                self.field(schema::PAGE_HEADER, kind, id, depth)?;
            }
        }
        let compressed = compressed.ok_or("no compressed_page_size")?;
        let body = usize::try_from(compressed)
            .map_err(|_| format!("compressed_page_size of {compressed}"))?;
        let remaining = self.remaining();
        self.bytes(body).map_err(|_| {
            format!("a page of {body} bytes where {remaining} remain in the column chunk")
        })
    }

    /// Reads a struct whose known fields `schema` lists.
    pub(super) fn known_struct(&mut self, schema: Schema, depth: usize) -> Result<(), String> {
        let depth = depth.checked_sub(1).ok_or("nested too deeply")?;
        let mut last_id = 0;
        while let Some((kind, id)) = self.field_header(last_id)? {
            last_id = id;
            self.field(schema, kind, id, depth)?;
        }
        Ok(())
    }

    /// Reads field `id`, claimed to be of type `kind`, of a struct with known fields `schema`.
    fn field(&mut self, schema: Schema, kind: Type, id: i16, depth: usize) -> Result<(), String> {
        match schema.iter().find(|(known_id, _)| *known_id == id) {
            Some(&(_, known)) => {
                expect(kind, known, Some(id))?;
                self.known(known, depth)
            }
            None => self.skip(kind, depth),
        }
    }

    /// Reads a value the way the crate reads a `known` one.
    fn known(&mut self, known: Known, depth: usize) -> Result<(), String> {
        match known {
            Known::Int => self.varint().map(drop),
            Known::Byte => self.bytes(1),
            Known::Bool => Ok(()),
            Known::Double => self.bytes(8),
            Known::Binary => self.skip(Type::Binary, depth),
            Known::Struct(schema) => self.known_struct(schema, depth),
            Known::List(element) => {
                let depth = depth.checked_sub(1).ok_or("nested too deeply")?;
                let (kind, raw) = self.list_header()?;
                expect(kind, *element, None)?;
                for _ in 0..self.count(raw, 1)? {
                    self.known(*element, depth)?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or("ends inside a structure")?;
        self.position += 1;
        Ok(byte)
    }

    fn bytes(&mut self, n: usize) -> Result<(), String> {
        if n > self.remaining() {
            return Err(format!(
                "declares {n} bytes where {} remain",
                self.remaining()
            ));
        }
        self.position += n;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A collection's element count, each element taking at least `width` bytes. Counts above
    /// the bytes left are refused whatever the width: a conforming writer spends a byte on every
    /// element, booleans included, and the crate would loop over each.
    fn count(&mut self, raw: u64, width: usize) -> Result<usize, String> {
        let too_many = || {
            format!(
                "declares {raw} elements where {} bytes remain",
                self.remaining()
            )
        };
        let count = usize::try_from(raw)
            .ok()
            .filter(|&n| n <= self.remaining() && n.saturating_mul(width) <= self.remaining())
            .ok_or_else(too_many)?;
        if width == 0 {
            self.zero_width += count;
            if self.zero_width > self.bytes.len() {
                return Err(format!(
                    "declares {} booleans in {} bytes",
                    self.zero_width,
                    self.bytes.len()
                ));
            }
        }
        Ok(count)
    }

    /// A list or set header: the element type and the raw element count (in the header's
    /// high nibble when under 15, else in a varint after it).
    fn list_header(&mut self) -> Result<(Type, u64), String> {
        let header = self.byte()?;
        let element = Type::from_wire(header & 0x0f)?;
        let raw = match header >> 4 {
            15 => self.varint()?,
            short => u64::from(short),
        };
        Ok((element, raw))
    }

    /// The next field's type and id, or `None` at the end of the structure.
    fn field_header(&mut self, last_id: i16) -> Result<Option<(Type, i16)>, String> {
        let byte = self.byte()?;
        if byte == 0 {
            return Ok(None);
        }
        let kind = Type::from_wire(byte & 0x0f)?;
        let id = match byte >> 4 {
            0 => i16::try_from(self.zigzag()?).map_err(|_| "a field id beyond i16")?,
            delta => last_id.wrapping_add(i16::from(delta)),
        };
        Ok(Some((kind, id)))
    }

    /// Skips one value of `kind`. A boolean takes no byte: in a struct it lives in the field
    /// header, and as a collection element the crate skips it without reading (the protocol
    /// gives it a byte; what matters here is to land where the crate lands).
    fn skip(&mut self, kind: Type, depth: usize) -> Result<(), String> {
        let depth = depth.checked_sub(1).ok_or("nested too deeply")?;
        match kind {
            Type::BoolTrue | Type::BoolFalse => Ok(()),
            Type::Byte => self.bytes(1),
            Type::I16 | Type::I32 | Type::I64 => self.varint().map(drop),
            Type::Double => self.bytes(8),
            Type::Uuid => self.bytes(16),
            Type::Binary => {
                let len = self.varint()?;
                let len = self.count(len, 1)?;
                self.bytes(len)
            }
            Type::List | Type::Set => {
                let (element, raw) = self.list_header()?;
                let count = self.count(raw, width(element))?;
                if width(element) > 0 {
                    for _ in 0..count {
                        self.skip(element, depth)?;
                    }
                }
                Ok(())
            }
            Type::Map => {
                let raw = self.varint()?;
                if raw == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                let (key, value) = (Type::from_wire(types >> 4)?, Type::from_wire(types & 0x0f)?);
                let entry = width(key) + width(value);
                let count = self.count(raw, entry)?;
                if entry > 0 {
                    for _ in 0..count {
                        self.skip(key, depth)?;
                        self.skip(value, depth)?;
                    }
                }
                Ok(())
            }
            Type::Struct => {
                let mut last_id = 0;
                while let Some((kind, id)) = self.field_header(last_id)? {
                    last_id = id;
                    self.skip(kind, depth)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_longer_than_its_bytes_is_refused() {
        // struct { 1: list<bool> of 2^31 − 1 elements } with nothing after the header.
        let bytes = [0x19, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let err = Compact::new(&bytes)
            .skip(Type::Struct, MAX_DEPTH)
            .unwrap_err();
        assert!(err.contains("declares 2147483647 elements"), "{err}");
    }

    #[test]
    fn nested_structures_are_walked_to_their_end() {
        // struct { 1: i32 −3, 2: binary "ab", 3: list<struct{1: true}> of 2, 4: map<i16, double> {} }
        let bytes = [
            0x15, 0x05, // field 1, i32, zigzag(-3) = 5
            0x18, 0x02, b'a', b'b', // field 2, binary of 2
            0x19, 0x2c, 0x11, 0x00, 0x11, 0x00, // field 3, list of 2 structs
            0x1b, 0x00, // field 4, empty map
            0x00, // stop
            0xee, // trailing byte, not part of the struct
        ];
        let mut reader = Compact::new(&bytes);
        reader
            .skip(Type::Struct, MAX_DEPTH)
            .expect("a well-formed struct");
        assert_eq!(reader.position, bytes.len() - 1);
    }

    #[test]
    fn depth_and_truncation_are_bounded() {
        let deep = [0x1c; 200];
        let err = Compact::new(&deep)
            .skip(Type::Struct, MAX_DEPTH)
            .unwrap_err();
        assert!(err.contains("nested too deeply"), "{err}");
        let truncated = [0x15];
        let err = Compact::new(&truncated)
            .skip(Type::Struct, MAX_DEPTH)
            .unwrap_err();
        assert!(err.contains("ends inside"), "{err}");
    }

    #[test]
    fn a_page_is_its_header_and_body() {
        // PageHeader { 1: type 0, 2: uncompressed 10, 3: compressed 4 } then 4 body bytes.
        let bytes = [0x15, 0x00, 0x15, 0x14, 0x15, 0x08, 0x00, 1, 2, 3, 4];
        let mut reader = Compact::new(&bytes);
        reader.page(MAX_DEPTH).expect("a well-formed page");
        assert_eq!(reader.remaining(), 0);
        let err = Compact::new(&bytes[..9]).page(MAX_DEPTH).unwrap_err();
        assert!(err.contains("a page of 4 bytes where 2 remain"), "{err}");
    }

    #[test]
    fn a_known_field_claiming_another_type_is_refused() {
        // PageHeader { 5: data_page_header claimed as a list }: the crate would read a struct
        // from these bytes, and a walk by the claimed type would read something else.
        let bytes = [0x59, 0x15, 0x00, 0x00];
        let err = Compact::new(&bytes).page(MAX_DEPTH).unwrap_err();
        assert!(err.contains("field 5 claims type List"), "{err}");
    }

    #[test]
    fn booleans_in_lists_are_read_as_the_crate_reads_them() {
        // struct { 1: list<bool> of 3 } is three bytes to the crate, whose skip reads nothing
        // per boolean; the walk must end where the crate's does to find the next page.
        let bytes = [0x19, 0x31, 0x00, 0xee, 0xee, 0xee];
        let mut reader = Compact::new(&bytes);
        reader.skip(Type::Struct, MAX_DEPTH).expect("a struct");
        assert_eq!(reader.position, 3);
    }

    #[test]
    fn booleans_are_budgeted_across_a_structure() {
        // A list of 4 lists of 14 booleans: each count fits the bytes left, but 56 booleans
        // in 26 bytes overall would have the crate loop over every one.
        let mut bytes = vec![0x19, 0x49];
        bytes.extend([0xe1; 4]);
        bytes.extend([0; 20]);
        let err = Compact::new(&bytes)
            .skip(Type::Struct, MAX_DEPTH)
            .unwrap_err();
        assert!(err.contains("declares 28 booleans in 26 bytes"), "{err}");
    }
}
