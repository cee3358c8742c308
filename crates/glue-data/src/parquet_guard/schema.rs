//! The fields the parquet crate (60.1.0) reads by id, with what it reads for each.
//!
//! The crate reads a field it knows as its schema says, whatever type the field header
//! claims, and skips every other field by the claimed type. A walk that skipped everything by
//! the claimed type would lose step with the crate on a header whose known field claims the
//! wrong type, and then vouch for bytes the crate reads differently; so the walk reads known
//! fields through these tables, and refuses a claimed type that does not match.
//!
//! From `parquet.thrift`: `PageHeader` and its members as the crate reads page headers
//! (statistics off, its default), and `FileMetaData` with everything below it.

/// What the crate reads for a field it knows.
#[derive(Clone, Copy, Debug)]
pub(super) enum Known {
    /// `i16`, `i32`, `i64` or an enum: a zigzag varint.
    Int,
    /// `i8`.
    Byte,
    /// `bool`, held in the field header.
    Bool,
    /// `double`.
    Double,
    /// `binary` or `string`.
    Binary,
    /// A struct or union with these known fields.
    Struct(Schema),
    /// A list of these.
    List(&'static Known),
}

/// A struct's known fields by id.
pub(super) type Schema = &'static [(i16, Known)];

use Known::{Binary, Bool, Byte, Double, Int, List, Struct};

/// A struct or union member without fields (`StringType`, `MilliSeconds`, …).
const EMPTY: Schema = &[];

pub(super) const PAGE_HEADER: Schema = &[
    (1, Int),
    (2, Int),
    (3, Int),
    (4, Int),
    (5, Struct(DATA_PAGE_HEADER)),
    (6, Struct(EMPTY)),
    (7, Struct(DICTIONARY_PAGE_HEADER)),
    (8, Struct(DATA_PAGE_HEADER_V2)),
];
const DATA_PAGE_HEADER: Schema = &[
    (1, Int),
    (2, Int),
    (3, Int),
    (4, Int),
    (5, Struct(STATISTICS)),
];
const DICTIONARY_PAGE_HEADER: Schema = &[(1, Int), (2, Int), (3, Bool)];
const DATA_PAGE_HEADER_V2: Schema = &[
    (1, Int),
    (2, Int),
    (3, Int),
    (4, Int),
    (5, Int),
    (6, Int),
    (7, Bool),
    (8, Struct(STATISTICS)),
];
const STATISTICS: Schema = &[
    (1, Binary),
    (2, Binary),
    (3, Int),
    (4, Int),
    (5, Binary),
    (6, Binary),
    (7, Bool),
    (8, Bool),
];

pub(super) const FILE_META_DATA: Schema = &[
    (1, Int),
    (2, List(&Struct(SCHEMA_ELEMENT))),
    (3, Int),
    (4, List(&Struct(ROW_GROUP))),
    (5, List(&Struct(KEY_VALUE))),
    (6, Binary),
    (7, List(&Struct(COLUMN_ORDER))),
    (8, Struct(ENCRYPTION_ALGORITHM)),
    (9, Binary),
];
const SCHEMA_ELEMENT: Schema = &[
    (1, Int),
    (2, Int),
    (3, Int),
    (4, Binary),
    (5, Int),
    (6, Int),
    (7, Int),
    (8, Int),
    (9, Int),
    (10, Struct(LOGICAL_TYPE)),
];
const LOGICAL_TYPE: Schema = &[
    (1, Struct(EMPTY)),
    (2, Struct(EMPTY)),
    (3, Struct(EMPTY)),
    (4, Struct(EMPTY)),
    (5, Struct(&[(1, Int), (2, Int)])),
    (6, Struct(EMPTY)),
    (7, Struct(TIME_TYPE)),
    (8, Struct(TIME_TYPE)),
    (10, Struct(&[(1, Byte), (2, Bool)])),
    (11, Struct(EMPTY)),
    (12, Struct(EMPTY)),
    (13, Struct(EMPTY)),
    (14, Struct(EMPTY)),
    (15, Struct(EMPTY)),
    (16, Struct(&[(1, Byte)])),
    (17, Struct(&[(1, Binary)])),
    (18, Struct(&[(1, Binary), (2, Int)])),
];
const TIME_TYPE: Schema = &[(1, Bool), (2, Struct(THREE_EMPTY))];
/// `TimeUnit` and `ColumnOrder`: unions of three empty members.
const THREE_EMPTY: Schema = &[(1, Struct(EMPTY)), (2, Struct(EMPTY)), (3, Struct(EMPTY))];
const ROW_GROUP: Schema = &[
    (1, List(&Struct(COLUMN_CHUNK))),
    (2, Int),
    (3, Int),
    (4, List(&Struct(&[(1, Int), (2, Bool), (3, Bool)]))),
    (5, Int),
    (6, Int),
    (7, Int),
];
const COLUMN_CHUNK: Schema = &[
    (1, Binary),
    (2, Int),
    (3, Struct(COLUMN_META_DATA)),
    (4, Int),
    (5, Int),
    (6, Int),
    (7, Int),
    (8, Struct(COLUMN_CRYPTO_META_DATA)),
    (9, Binary),
];
const COLUMN_META_DATA: Schema = &[
    (1, Int),
    (2, List(&Int)),
    (3, List(&Binary)),
    (4, Int),
    (5, Int),
    (6, Int),
    (7, Int),
    (8, List(&Struct(KEY_VALUE))),
    (9, Int),
    (10, Int),
    (11, Int),
    (12, Struct(STATISTICS)),
    (13, List(&Struct(&[(1, Int), (2, Int), (3, Int)]))),
    (14, Int),
    (15, Int),
    (16, Struct(&[(1, Int), (2, List(&Int)), (3, List(&Int))])),
    (17, Struct(&[(1, Struct(BOUNDING_BOX)), (2, List(&Int))])),
];
const BOUNDING_BOX: Schema = &[
    (1, Double),
    (2, Double),
    (3, Double),
    (4, Double),
    (5, Double),
    (6, Double),
    (7, Double),
    (8, Double),
];
const KEY_VALUE: Schema = &[(1, Binary), (2, Binary)];
const COLUMN_ORDER: Schema = THREE_EMPTY;
const ENCRYPTION_ALGORITHM: Schema = &[(1, Struct(AES_GCM)), (2, Struct(AES_GCM))];
const AES_GCM: Schema = &[(1, Binary), (2, Binary), (3, Bool)];
const COLUMN_CRYPTO_META_DATA: Schema = &[
    (1, Struct(EMPTY)),
    (2, Struct(&[(1, List(&Binary)), (2, Binary)])),
];
