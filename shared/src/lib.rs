//! The target-independent core of cogo-edge. Everything here builds for
//! wasm32 and natively and is unit-tested natively; the clock and the HTTP
//! transport are always passed in.

// Errors are the cold path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod config;
pub mod figma;
pub mod http;
pub mod postgrest;
pub mod queue;
pub mod realtime;
pub mod storage;
pub mod time;

pub use http::error::ApiError;

/// Lower-case hex, as digests and signatures are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)] as char, DIGITS[usize::from(b & 0x0f)] as char]).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
