//! The kernel's dump of Portal's table -> a normalized listing: pure.
//!
//! What changes without anyone writing is dropped (object handles, rule
//! positions, counter values, chain counters, the generation); the rest is
//! kept byte for byte, so that two listings are equal exactly when the
//! kernel holds the same table. The listing is Portal's own state (stored
//! after each write and compared on each pass), one line per object.

use super::wire::*;
use std::fmt::Write;

/// The first line of a listing: a stored listing of another format (the
/// `nft list` text of earlier versions) never equals a fresh one.
pub const HEADER: &str = "portal nftables listing v1 (netlink)";

/// The dumped messages of one table, each as its payload after the netlink
/// header (nfgenmsg, then attributes).
#[derive(Debug, Default, Clone)]
pub struct Dump {
    pub table: Vec<u8>,
    pub objects: Vec<Vec<u8>>,
    pub chains: Vec<Vec<u8>>,
    pub sets: Vec<Vec<u8>>,
    /// The elements of each set: (set name, element messages).
    pub elements: Vec<(String, Vec<Vec<u8>>)>,
    pub rules: Vec<Vec<u8>>,
}

fn body(payload: &[u8]) -> Vec<Attr<'_>> {
    attrs(payload.get(NFGENMSG_LEN..).unwrap_or_default())
}

/// Whether a dumped object (chain, set, rule, object) belongs to `table`.
pub fn in_table(payload: &[u8], table_attr: u16, table: &str) -> bool {
    find(&body(payload), table_attr).is_some_and(|a| a.str() == table)
}

fn hex(out: &mut String, data: &[u8]) {
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
}

/// `type=hex` for each attribute but the `skip`ped ones.
fn line(out: &mut String, kind: &str, attrs: &[Attr], skip: &[u16]) {
    out.push_str(kind);
    for a in attrs.iter().filter(|a| !skip.contains(&a.ty)) {
        let _ = write!(out, " {}=", a.ty);
        hex(out, a.data);
    }
    out.push('\n');
}

pub fn normalize(d: &Dump) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    line(&mut out, "table", &body(&d.table), &[NFTA_TABLE_HANDLE]);
    for o in &d.objects {
        let a = body(o);
        let counter = find(&a, NFTA_OBJ_TYPE).and_then(|t| t.be32()) == Some(NFT_OBJECT_COUNTER);
        let mut skip = vec![NFTA_OBJ_HANDLE];
        if counter {
            skip.push(NFTA_OBJ_DATA);
        }
        line(&mut out, "object", &a, &skip);
    }
    for c in &d.chains {
        line(
            &mut out,
            "chain",
            &body(c),
            &[NFTA_CHAIN_HANDLE, NFTA_CHAIN_COUNTERS],
        );
    }
    for s in &d.sets {
        // NFTA_SET_TYPE names the kernel's set backend (on some kernels an
        // address): it follows from the flags written.
        line(&mut out, "set", &body(s), &[NFTA_SET_HANDLE, NFTA_SET_TYPE]);
    }
    for (name, msgs) in &d.elements {
        // A hash set dumps its elements in hash order: sorted here, as the
        // order of a set's elements means nothing.
        let mut elems: Vec<&[u8]> = msgs
            .iter()
            .filter_map(|m| find(&body(m), NFTA_SET_ELEM_LIST_ELEMENTS))
            .flat_map(|l| l.nested().into_iter().map(|e| e.data))
            .collect();
        elems.sort();
        let _ = writeln!(out, "elements {name}");
        for e in elems {
            out.push_str("  ");
            hex(&mut out, e);
            out.push('\n');
        }
    }
    for r in &d.rules {
        let a = body(r);
        line(
            &mut out,
            "rule",
            &a,
            &[NFTA_RULE_HANDLE, NFTA_RULE_POSITION, NFTA_RULE_EXPRESSIONS],
        );
        // Each expression on a line of its own; a counter's values dropped.
        if let Some(exprs) = find(&a, NFTA_RULE_EXPRESSIONS) {
            for e in exprs.nested() {
                let fields = e.nested();
                let name = find(&fields, NFTA_EXPR_NAME)
                    .map(|n| n.str())
                    .unwrap_or("?");
                out.push_str("  ");
                out.push_str(name);
                if name != "counter" {
                    if let Some(data) = find(&fields, NFTA_EXPR_DATA) {
                        out.push(' ');
                        hex(&mut out, data.data);
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(f: impl FnOnce(&mut Attrs)) -> Vec<u8> {
        let mut b = vec![NFPROTO_INET, 0, 0, 0];
        f(&mut Attrs::new(&mut b));
        b
    }

    fn rule(handle: u64, counter_packets: u64) -> Vec<u8> {
        payload(|a| {
            a.str(NFTA_RULE_TABLE, "portal")
                .str(NFTA_RULE_CHAIN, "input")
                .be64(NFTA_RULE_HANDLE, handle)
                .nest(NFTA_RULE_EXPRESSIONS, |a| {
                    a.nest(NFTA_LIST_ELEM, |a| {
                        a.str(NFTA_EXPR_NAME, "counter").nest(NFTA_EXPR_DATA, |a| {
                            a.be64(1, counter_packets * 60).be64(2, counter_packets);
                        });
                    })
                    .nest(NFTA_LIST_ELEM, |a| {
                        a.str(NFTA_EXPR_NAME, "immediate")
                            .nest(NFTA_EXPR_DATA, |a| {
                                a.be32(1, 0);
                            });
                    });
                });
        })
    }

    fn counter_obj(handle: u64, packets: u64) -> Vec<u8> {
        payload(|a| {
            a.str(NFTA_OBJ_TABLE, "portal")
                .str(NFTA_OBJ_NAME, "drop_forward")
                .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER)
                .nest(NFTA_OBJ_DATA, |a| {
                    a.be64(NFTA_COUNTER_BYTES, packets * 60)
                        .be64(NFTA_COUNTER_PACKETS, packets);
                })
                .be64(NFTA_OBJ_HANDLE, handle);
        })
    }

    fn dump(handle: u64, packets: u64) -> Dump {
        Dump {
            table: payload(|a| {
                a.str(NFTA_TABLE_NAME, "portal")
                    .be64(NFTA_TABLE_HANDLE, handle);
            }),
            objects: vec![counter_obj(handle + 1, packets)],
            rules: vec![rule(handle + 2, packets)],
            ..Dump::default()
        }
    }

    #[test]
    fn handles_and_counter_values_do_not_count() {
        assert_eq!(normalize(&dump(1, 0)), normalize(&dump(90, 12345)));
        assert!(normalize(&dump(1, 0)).starts_with(HEADER));
    }

    #[test]
    fn a_changed_expression_counts() {
        let a = dump(1, 0);
        let mut b = dump(1, 0);
        b.rules[0] = payload(|a| {
            a.str(NFTA_RULE_TABLE, "portal")
                .str(NFTA_RULE_CHAIN, "input")
                .nest(NFTA_RULE_EXPRESSIONS, |a| {
                    a.nest(NFTA_LIST_ELEM, |a| {
                        a.str(NFTA_EXPR_NAME, "immediate")
                            .nest(NFTA_EXPR_DATA, |a| {
                                a.be32(1, 1);
                            });
                    });
                });
        });
        assert_ne!(normalize(&a), normalize(&b));
    }

    #[test]
    fn set_elements_compare_in_any_order() {
        let elems = |keys: &[u8]| {
            payload(|a| {
                a.str(NFTA_SET_ELEM_LIST_TABLE, "portal")
                    .str(NFTA_SET_ELEM_LIST_SET, "__set0")
                    .nest(NFTA_SET_ELEM_LIST_ELEMENTS, |a| {
                        for k in keys {
                            a.nest(NFTA_LIST_ELEM, |a| {
                                a.nest(NFTA_SET_ELEM_KEY, |a| {
                                    a.bytes(NFTA_DATA_VALUE, &[*k]);
                                });
                            });
                        }
                    });
            })
        };
        let with = |msgs: Vec<Vec<u8>>| {
            let mut d = dump(1, 0);
            d.elements = vec![("__set0".into(), msgs)];
            normalize(&d)
        };
        assert_eq!(
            with(vec![elems(&[1, 2, 3])]),
            with(vec![elems(&[3]), elems(&[2, 1])])
        );
        assert_ne!(with(vec![elems(&[1, 2, 3])]), with(vec![elems(&[1, 2])]));
    }

    #[test]
    fn objects_are_filtered_by_table() {
        let o = counter_obj(1, 0);
        assert!(in_table(&o, NFTA_OBJ_TABLE, "portal"));
        assert!(!in_table(&o, NFTA_OBJ_TABLE, "other"));
    }
}
