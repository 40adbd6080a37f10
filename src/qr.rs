//! QR codes of device configs, for phone apps (WireGuard for Android/iOS):
//! byte mode, error correction M (L when M does not fit), drawn in the
//! terminal with Unicode half blocks or as SVG for the status page.
//!
//! The encoder is `qrcodegen` (Nayuki's reference implementation: no
//! dependencies, no unsafe, tested against the standard's examples).

use qrcodegen::{QrCode, QrCodeEcc, QrSegment};
use std::fmt::Write;

/// Modules of light margin around the code, as the standard requires.
pub const QUIET_ZONE: i32 = 4;

/// The QR code of `data` (bytes), or an error if too long for any version.
pub fn encode(data: &[u8]) -> Result<QrCode, String> {
    let segs = [QrSegment::make_bytes(data)];
    for ecc in [QrCodeEcc::Medium, QrCodeEcc::Low] {
        if let Ok(q) = QrCode::encode_segments_advanced(
            &segs,
            ecc,
            qrcodegen::Version::MIN,
            qrcodegen::Version::MAX,
            None,
            false,
        ) {
            return Ok(q);
        }
    }
    Err(format!(
        "{} bytes do not fit in a QR code (2953 at most)",
        data.len()
    ))
}

/// Module (x, y) is dark; outside the code (the quiet zone) is light.
fn dark(q: &QrCode, x: i32, y: i32) -> bool {
    q.get_module(x, y)
}

/// Two rows of modules per text line, light modules drawn as blocks (for
/// the usual light-on-dark terminal, as `qrencode -t UTF8` does), with the
/// quiet zone.
pub fn terminal(q: &QrCode) -> String {
    let (lo, hi) = (-QUIET_ZONE, q.size() + QUIET_ZONE);
    let mut out = String::new();
    let mut y = lo;
    while y < hi {
        for x in lo..hi {
            let top = !dark(q, x, y);
            let bottom = y + 1 < hi && !dark(q, x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

/// An SVG of the code (dark on white, quiet zone included), `scale` pixels
/// per module.
pub fn svg(q: &QrCode, scale: i32) -> String {
    let n = q.size() + 2 * QUIET_ZONE;
    let mut path = String::new();
    for y in 0..q.size() {
        for x in 0..q.size() {
            if dark(q, x, y) {
                let _ = write!(path, "M{},{}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE);
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {n} {n}\" width=\"{w}\" height=\"{w}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{n}\" height=\"{n}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>",
        w = n * scale
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the terminal drawing back into modules (true = dark).
    fn read_back(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '█' => (false, false),
                    '▀' => (false, true),
                    '▄' => (true, false),
                    _ => (true, true),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn terminal_drawing_holds_every_module_and_the_quiet_zone() {
        let q = encode(b"[Interface]\nPrivateKey = x\n").unwrap();
        let rows = read_back(&terminal(&q));
        let n = (q.size() + 2 * QUIET_ZONE) as usize;
        assert!(rows.len() >= n && rows[0].len() == n);
        for (y, row) in rows.iter().take(n).enumerate() {
            for (x, m) in row.iter().enumerate() {
                let (qx, qy) = (x as i32 - QUIET_ZONE, y as i32 - QUIET_ZONE);
                assert_eq!(*m, q.get_module(qx, qy), "module {qx},{qy}");
            }
        }
        // The quiet zone is light all round.
        assert!(rows[..4].iter().all(|r| r.iter().all(|m| !m)));
    }

    #[test]
    fn byte_mode_with_medium_correction() {
        // 300 bytes (a typical device .conf) fit at M; the version follows
        // from the byte-mode capacity table (version 11-M: 251, 12-M: 287,
        // 13-M: 331 bytes).
        let q = encode(&[b'a'; 300]).unwrap();
        assert_eq!(q.error_correction_level(), QrCodeEcc::Medium);
        assert_eq!(q.version().value(), 13);
        // Past M's capacity at version 40 (2331 bytes), L still fits (2953).
        let q = encode(&[b'a'; 2500]).unwrap();
        assert_eq!(q.error_correction_level(), QrCodeEcc::Low);
        assert!(encode(&[b'a'; 3000]).is_err());
    }

    #[test]
    fn svg_has_one_square_per_dark_module() {
        let q = encode(b"hello").unwrap();
        let dark = (0..q.size())
            .flat_map(|y| (0..q.size()).map(move |x| (x, y)))
            .filter(|&(x, y)| q.get_module(x, y))
            .count();
        assert_eq!(svg(&q, 4).matches("h1v1h-1z").count(), dark);
    }
}
