//! Which compressed copy of a static file a client gets, and making it.
//!
//! A file of the live generation is compressed once, on its first request
//! in each encoding, and the copy is kept with the file
//! ([`super::file_cache::LiveFile`]), where compressing on every request
//! (as the compression layer does for pages drawn by `serve`) costs more
//! than sending the bytes. Brotli is preferred when a client accepts both,
//! as browsers do; otherwise gzip.
//!
//! Must not: decide whether a file is compressible (`static_files`) or keep
//! the copies (`file_cache`).

use std::io::Write as _;

use axum::http::{HeaderMap, header};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` value.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// Where its copy is kept in a file's array of copies.
    pub fn index(self) -> usize {
        match self {
            Encoding::Brotli => 0,
            Encoding::Gzip => 1,
        }
    }

    /// `bytes` compressed; `None` if compressing fails (the file is then
    /// sent as it is).
    pub fn compress(self, bytes: &[u8]) -> Option<Vec<u8>> {
        match self {
            Encoding::Brotli => {
                // Quality 6: most of the size gain of 11 for a tenth of the
                // time; a window of 4 MiB is more than any kept file.
                let mut writer = brotli::CompressorWriter::new(Vec::new(), 4096, 6, 22);
                writer.write_all(bytes).ok()?;
                Some(writer.into_inner())
            }
            Encoding::Gzip => {
                let mut writer =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                writer.write_all(bytes).ok()?;
                writer.finish().ok()
            }
        }
    }
}

/// The weight (`q=`) among an `Accept` or `Accept-Encoding` item's
/// parameters; one that is missing or does not parse counts as the
/// default, 1.
pub fn weight<'a>(parameters: impl Iterator<Item = &'a str>) -> f32 {
    parameters
        .filter_map(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
        })
        .find_map(|q| q.trim().parse::<f32>().ok())
        .unwrap_or(1.0)
}

/// The encoding `request` accepts with the highest weight (RFC 9110
/// §12.5.3), Brotli on a tie; `None` when it accepts neither.
pub fn preferred(request: &HeaderMap) -> Option<Encoding> {
    let accept = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())?;
    let (mut brotli, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = weight(parts);
        if name.eq_ignore_ascii_case("br") {
            brotli = Some(q);
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    let brotli = brotli.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if brotli > 0.0 && brotli >= gzip {
        Some(Encoding::Brotli)
    } else if gzip > 0.0 {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accepting(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_best_weighted_encoding_is_chosen_brotli_on_a_tie() {
        for (accept, chosen) in [
            ("gzip, deflate, br, zstd", Some(Encoding::Brotli)),
            ("gzip", Some(Encoding::Gzip)),
            ("x-gzip", Some(Encoding::Gzip)),
            ("br;q=0.5, gzip", Some(Encoding::Gzip)),
            ("br;q=0, gzip;q=0", None),
            ("gzip;q=0, *", Some(Encoding::Brotli)),
            ("*;q=0.1, gzip;q=0", Some(Encoding::Brotli)),
            ("identity", None),
            ("deflate", None),
            ("", None),
        ] {
            assert_eq!(preferred(&accepting(accept)), chosen, "{accept}");
        }
        assert_eq!(preferred(&HeaderMap::new()), None);
    }

    #[test]
    fn copies_decompress_to_the_original() {
        let text = "A short on feeds. ".repeat(500);
        let gzip = Encoding::Gzip.compress(text.as_bytes()).unwrap();
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(gzip.len() < text.len() / 10);
        let brotli = Encoding::Brotli.compress(text.as_bytes()).unwrap();
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &brotli[..], &mut back).unwrap();
        assert_eq!(back, text.as_bytes());
    }
}
