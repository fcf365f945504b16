//! The `c_abi` target: libfuzzer's bytes, straight into the driver in craton-pkcs11
//! (`src/ffi/fuzz.rs`, feature `fuzzing`), which makes the calls.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| craton_hsm::ffi::fuzz::run(data));
