//! Reads Portal's rules back out of the normalized netlink listing
//! (kernel/nftables/dump.rs): each rule's chain, comment (nft's user data)
//! and expression lines, so the checks can ask "is the kill switch rule
//! there?" without the state directory's record.

/// One rule of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftRule {
    pub chain: String,
    pub comment: Option<String>,
    /// "name hexdata" per expression, as the listing has them.
    pub exprs: Vec<String>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}

/// The comment in nft's rule user data (TLV; type 0 is the comment).
fn comment(udata: &[u8]) -> Option<String> {
    let mut b = udata;
    while b.len() >= 2 {
        let (ty, len) = (b[0], usize::from(b[1]));
        let value = b.get(2..2 + len)?;
        if ty == 0 {
            return Some(cstr(value));
        }
        b = &b[2 + len..];
    }
    None
}

pub fn rules(listing: &str) -> Vec<NftRule> {
    let mut out: Vec<NftRule> = Vec::new();
    let mut in_rule = false;
    for line in listing.lines() {
        if let Some(rest) = line.strip_prefix("rule ") {
            let mut r = NftRule::default();
            for attr in rest.split(' ') {
                match attr.split_once('=') {
                    Some(("2", v)) => r.chain = cstr(&unhex(v)),
                    Some(("7", v)) => r.comment = comment(&unhex(v)),
                    _ => {}
                }
            }
            out.push(r);
            in_rule = true;
        } else if let (true, Some(e)) = (in_rule, line.strip_prefix("  ")) {
            if let Some(r) = out.last_mut() {
                r.exprs.push(e.to_string());
            }
        } else {
            in_rule = false;
        }
    }
    out
}

/// Whether a rule's expressions carry the 16-bit value `v` (big-endian), as
/// the MSS clamp's compare and set do.
pub fn carries_be16(r: &NftRule, v: u16) -> bool {
    let hex = format!("{:02x}{:02x}", v >> 8, v & 0xff);
    r.exprs
        .iter()
        .filter(|e| e.starts_with("cmp ") || e.starts_with("immediate "))
        .any(|e| e.contains(&hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn reads_chain_comment_and_expressions() {
        let mut ud = vec![0u8, 17];
        ud.extend_from_slice(b"mss clamp paris\0\0");
        let listing = format!(
            "portal nftables listing v1 (netlink)\ntable 1={}\nrule 1={} 2={} 7={}\n  meta 0004\n  cmp 0c000300060001{}0000\nrule 1={} 2={}\n  counter\nchain 1=00\n",
            hex(b"portal\0"),
            hex(b"portal\0"),
            hex(b"forward\0"),
            hex(&ud),
            "04d8",
            hex(b"portal\0"),
            hex(b"input\0"),
        );
        let r = rules(&listing);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].chain, "forward");
        assert_eq!(r[0].comment.as_deref(), Some("mss clamp paris"));
        assert_eq!(r[0].exprs.len(), 2);
        assert!(carries_be16(&r[0], 1240));
        assert!(!carries_be16(&r[0], 1380));
        assert_eq!(r[1].chain, "input");
        assert_eq!(r[1].comment, None);
    }
}
