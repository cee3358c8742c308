//! Runnable examples: the course notebook written in Rust.
