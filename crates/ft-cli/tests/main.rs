//! ft-cli's integration tests, one module per file, in one test binary: every binary links
//! all of burn's backends (about 170 MB each), so a binary per file cost CI gigabytes of disk
//! and minutes of linking.

mod common;

mod bench;
mod distributed;
mod encode;
mod family;
mod finetune;
mod max_length;
mod reliability;
