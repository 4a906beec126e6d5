//! SMTP client
//!
//! `SmtpConnection` allows manually sending SMTP commands.
//!
//! ```rust,no_run
//! # use std::error::Error;
//!
//! # #[cfg(feature = "smtp-transport")]
//! # fn main() -> Result<(), Box<dyn Error>> {
//! use lettre::transport::smtp::{
//!     SMTP_PORT, client::SmtpConnection, commands::*, extension::ClientId,
//! };
//!
//! let hello = ClientId::Domain("my_hostname".to_owned());
//! let mut client = SmtpConnection::connect(&("localhost", SMTP_PORT), None, &hello, None, None)?;
//! client.command(Mail::new(Some("user@example.com".parse()?), vec![]))?;
//! client.command(Rcpt::new("user@example.org".parse()?, vec![]))?;
//! client.command(Data)?;
//! client.message("Test email".as_bytes())?;
//! client.command(Quit)?;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "serde")]
use std::fmt::Debug;

#[cfg(any(feature = "tokio1", feature = "async-std1"))]
pub use self::async_connection::AsyncSmtpConnection;
#[cfg(any(feature = "tokio1", feature = "async-std1"))]
#[allow(deprecated)]
pub use self::async_net::AsyncNetworkStream;
#[cfg(feature = "tokio1")]
pub use self::async_net::AsyncTokioStream;
use self::net::NetworkStream;
#[cfg(any(feature = "native-tls", feature = "rustls", feature = "boring-tls"))]
pub(super) use self::tls::InnerTlsParameters;
#[cfg(any(feature = "native-tls", feature = "rustls", feature = "boring-tls"))]
pub use self::tls::TlsVersion;
pub use self::{
    connection::SmtpConnection,
    tls::{Certificate, CertificateStore, Identity, Tls, TlsParameters, TlsParametersBuilder},
};

#[cfg(any(feature = "tokio1", feature = "async-std1"))]
mod async_connection;
#[cfg(any(feature = "tokio1", feature = "async-std1"))]
mod async_net;
mod connection;
mod net;
mod tls;

/// Total bytes cap on an SMTP response (Postfix `smtp_response_limit`).
pub(super) const MAX_RESPONSE_BYTES: usize = 100_000;

/// Single-line byte cap (Postfix `line_length_limit`).
pub(super) const MAX_RESPONSE_LINE_BYTES: usize = 1000;

/// The codec used for transparency
#[derive(Debug)]
struct ClientCodec {
    status: CodecStatus,
}

impl ClientCodec {
    /// Creates a new client codec
    pub(crate) fn new() -> Self {
        Self {
            status: CodecStatus::StartOfNewLine,
        }
    }

    /// Adds transparency: doubles every `.` that starts a line (after CRLF,
    /// or at the very start). Copies the runs in between whole.
    /// (shorts: replaces a push per byte, which cost more than the rest of
    /// sending a message.)
    fn encode(&mut self, frame: &[u8], buf: &mut Vec<u8>) {
        buf.reserve(frame.len());
        let status = self.status;
        let starts_line = |at: usize| match at {
            0 => matches!(status, CodecStatus::StartOfNewLine),
            1 => frame[0] == b'\n' && matches!(status, CodecStatus::StartingNewLine),
            _ => frame[at - 2] == b'\r' && frame[at - 1] == b'\n',
        };
        let mut copied = 0;
        // shorts: memchr finds the dots; most text has many, few start a line.
        for at in memchr::memchr_iter(b'.', frame) {
            if starts_line(at) {
                buf.extend_from_slice(&frame[copied..=at]);
                buf.push(b'.');
                copied = at + 1;
            }
        }
        buf.extend_from_slice(&frame[copied..]);
        self.status = match frame {
            [] => status,
            [.., b'\r'] => CodecStatus::StartingNewLine,
            [.., b'\r', b'\n'] => CodecStatus::StartOfNewLine,
            [b'\n'] if matches!(status, CodecStatus::StartingNewLine) => CodecStatus::StartOfNewLine,
            _ => CodecStatus::MiddleOfLine,
        };
    }
}

#[derive(Debug, Copy, Clone)]
#[allow(clippy::enum_variant_names)]
enum CodecStatus {
    /// We are past the first character of the current line
    MiddleOfLine,
    /// We just read a `\r` character
    StartingNewLine,
    /// We are at the start of a new line
    StartOfNewLine,
}

/// Returns the string replacing all the CRLF with "\<CRLF\>"
/// Used for debug displays
#[cfg(feature = "tracing")]
pub(super) fn escape_crlf(string: &str) -> String {
    string.replace("\r\n", "<CRLF>")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_codec() {
        let mut buf = Vec::new();
        let mut codec = ClientCodec::new();

        codec.encode(b".\r\n", &mut buf);
        codec.encode(b"test\r\n", &mut buf);
        codec.encode(b"test\r\n\r\n", &mut buf);
        codec.encode(b".\r\n", &mut buf);
        codec.encode(b"\r\ntest", &mut buf);
        codec.encode(b"te\r\n.\r\nst", &mut buf);
        codec.encode(b"test", &mut buf);
        codec.encode(b"test.", &mut buf);
        codec.encode(b"test\n", &mut buf);
        codec.encode(b".test\n", &mut buf);
        codec.encode(b"test", &mut buf);
        codec.encode(b"test", &mut buf);
        codec.encode(b"test\r\n", &mut buf);
        codec.encode(b".test\r\n", &mut buf);
        codec.encode(b"test.\r\n", &mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "..\r\ntest\r\ntest\r\n\r\n..\r\n\r\ntestte\r\n..\r\nsttesttest.test\n.test\ntesttesttest\r\n..test\r\ntest.\r\n"
        );
    }

    // shorts: lettre 0.11.23's `ClientCodec::encode`, verbatim (only renamed),
    // the reference for `test_codec_matches_0_11_23` below.
    impl ClientCodec {
        /// Adds transparency
        fn encode_0_11_23(&mut self, frame: &[u8], buf: &mut Vec<u8>) {
            for &b in frame {
                buf.push(b);
                match (b, self.status) {
                    (b'\r', _) => {
                        self.status = CodecStatus::StartingNewLine;
                    }
                    (b'\n', CodecStatus::StartingNewLine) => {
                        self.status = CodecStatus::StartOfNewLine;
                    }
                    (_, CodecStatus::StartingNewLine) => {
                        self.status = CodecStatus::MiddleOfLine;
                    }
                    (b'.', CodecStatus::StartOfNewLine) => {
                        self.status = CodecStatus::MiddleOfLine;
                        buf.push(b'.');
                    }
                    (_, CodecStatus::StartOfNewLine) => {
                        self.status = CodecStatus::MiddleOfLine;
                    }
                    _ => {}
                }
            }
        }
    }

    /// shorts: the run-copying `encode` gives the same bytes as lettre
    /// 0.11.23's byte-by-byte one, and ends in the same state, for every
    /// frame of 20,000 pseudo-random frame sequences (state carried across
    /// frames, empty frames included) over an alphabet heavy in `.`, `\r`
    /// and `\n`, so that line starts, and CRLFs split between frames, are
    /// common.
    #[test]
    fn test_codec_matches_0_11_23() {
        const ALPHABET: &[u8] = b"..\r\r\n\nab";
        // xorshift64, fixed seed: the same sequences on every run.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound) as usize
        };
        let same = |a: CodecStatus, b: CodecStatus| {
            std::mem::discriminant(&a) == std::mem::discriminant(&b)
        };

        let (mut new_buf, mut old_buf) = (Vec::new(), Vec::new());
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for sequence in 0..20_000 {
            let (mut new, mut old) = (ClientCodec::new(), ClientCodec::new());
            frames.clear();
            for _ in 0..=next(8) {
                let frame: Vec<u8> = (0..next(13)).map(|_| ALPHABET[next(8)]).collect();
                frames.push(frame);
                let frame = frames.last().unwrap();

                new_buf.clear();
                old_buf.clear();
                new.encode(frame, &mut new_buf);
                old.encode_0_11_23(frame, &mut old_buf);
                let show = |frames: &[Vec<u8>]| {
                    frames
                        .iter()
                        .map(|f| format!("\"{}\"", f.escape_ascii()))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                assert!(
                    new_buf == old_buf,
                    "sequence {sequence}, frames [{}]: last frame wrote \"{}\", expected \"{}\"",
                    show(&frames),
                    new_buf.escape_ascii(),
                    old_buf.escape_ascii()
                );
                assert!(
                    same(new.status, old.status),
                    "sequence {sequence}, frames [{}]: state {:?}, expected {:?}",
                    show(&frames),
                    new.status,
                    old.status
                );
            }
        }
    }

    #[test]
    #[cfg(feature = "tracing")]
    fn test_escape_crlf() {
        assert_eq!(escape_crlf("\r\n"), "<CRLF>");
        assert_eq!(escape_crlf("EHLO my_name\r\n"), "EHLO my_name<CRLF>");
        assert_eq!(
            escape_crlf("EHLO my_name\r\nSIZE 42\r\n"),
            "EHLO my_name<CRLF>SIZE 42<CRLF>"
        );
    }
}
