//! ft-collate's integration tests, one module per file, in one test binary: every binary links
//! all of burn's backends (about 170 MB each), so a binary per file cost CI gigabytes of disk
//! and minutes of linking.

mod collate;
mod loading;
mod no_limit;
mod parity;
