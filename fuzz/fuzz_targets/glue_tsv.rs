#![no_main]
//! Fuzzes `fuzz_harness::glue_tsv`: any input may be refused, none may panic.

libfuzzer_sys::fuzz_target!(
    // libFuzzer's hook aborts on every panic, even one the readers catch and turn into an
    // error (the parquet crate panics on some malformed files); a panic that escapes the
    // harness still aborts the run.
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        let _ = fuzz_harness::glue_tsv(data);
    }
);
