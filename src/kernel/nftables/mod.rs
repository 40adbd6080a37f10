//! Portal's nftables table through nf_tables netlink (no `nft` command):
//! the whole table is replaced in one transaction (one batch), never
//! touching other tables; every message is acknowledged, and a refusal
//! names the chain, rule or set that failed.
//!
//! To know whether the kernel still has what was written without rewriting
//! it, the table's dump taken right after a write is kept (in memory and in
//! the state directory, to survive an agent restart) and compared with a
//! fresh dump on each pass; handles and counter values are ignored in that
//! comparison (dump.rs).

pub mod dump;
pub mod encode;
pub mod wire;

use super::nlsock::{NlSocket, NETLINK_CAP_ACK, NETLINK_EXT_ACK};
use crate::core::ruleset::{
    Chain, ChainKind, Flowtable, Hook, Priority, Rule, Stmt, Table, Verdict,
};
use encode::Batch;
use nix::errno::Errno;
use nix::sys::socket::SockProtocol;
use std::time::Duration;
use wire::*;

/// What a write took: the batch's size, and the time from encoding to the
/// last acknowledgement (closing the socket afterwards can wait for the
/// kernel to free the old table: not counted).
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub bytes: usize,
    pub messages: usize,
    pub elapsed: Duration,
}

/// Replaces the table with `t` atomically.
pub fn replace(t: &Table) -> Result<Written, String> {
    let started = std::time::Instant::now();
    let ifindex = |name: &str| nix::net::if_::if_nametoindex(name).ok();
    let batch = encode::replace(t, &ifindex, 1)?;
    let sock = Socket::open()?;
    sock.transact(&batch)?;
    let elapsed = started.elapsed();
    drop(sock);
    Ok(Written {
        bytes: batch.bytes.len(),
        messages: batch.parts.len(),
        elapsed,
    })
}

/// Deletes the table (nothing if it does not exist).
pub fn delete(table: &str) -> Result<(), String> {
    Socket::open()?.transact(&encode::delete(table, 1))
}

/// Whether the kernel has flowtables and `flow add` (NF_FLOW_TABLE_INET,
/// NFT_FLOW_OFFLOAD): a probe table holding both, checked by the kernel and
/// never committed (a dry-run batch): no table appears, no event is sent.
pub fn flowtables_supported() -> bool {
    const PROBE: &str = "portal_probe";
    let t = Table {
        name: PROBE.into(),
        counters: Vec::new(),
        flowtables: vec![Flowtable {
            name: "probe".into(),
            devices: vec!["lo".into()],
        }],
        chains: vec![Chain {
            name: "forward".into(),
            kind: ChainKind::Filter,
            hook: Hook::Forward,
            priority: Priority::Filter,
            policy: Verdict::Accept,
            rules: vec![Rule::new(vec![Stmt::FlowAdd("probe".into()).into()])],
        }],
    };
    would_accept(&t)
}

/// Whether the kernel accepts `t` as a replacement, without writing it.
fn would_accept(t: &Table) -> bool {
    let ifindex = |name: &str| nix::net::if_::if_nametoindex(name).ok();
    let Ok(batch) = encode::replace(t, &ifindex, 1) else {
        return false;
    };
    Socket::open()
        .and_then(|s| s.transact(&batch.dry_run()))
        .is_ok()
}

/// The table's normalized dump, or None when it does not exist.
pub fn listing(table: &str) -> Result<Option<String>, String> {
    let sock = Socket::open()?;
    // A write between the requests would mix two generations: retry.
    for _ in 0..5 {
        let before = sock.generation()?;
        let Some(d) = sock.dump(table)? else {
            return Ok(None);
        };
        if sock.generation()? == before {
            return Ok(Some(dump::normalize(&d)));
        }
    }
    Err("nftables: the ruleset kept changing while it was read".into())
}

const NLM_F_CAPPED: u16 = 0x100;
/// Room for the acknowledgements of a large batch.
const RCVBUF: usize = 4 << 20;

struct Socket {
    nl: NlSocket,
}

fn sys(what: &str, e: Errno) -> String {
    format!("nftables netlink: {what}: {}", e.desc())
}

impl Socket {
    fn open() -> Result<Socket, String> {
        let nl = NlSocket::open("nftables netlink", SockProtocol::NetlinkNetFilter, RCVBUF)?;
        nl.enable(NETLINK_EXT_ACK);
        nl.enable(NETLINK_CAP_ACK);
        Ok(Socket { nl })
    }

    fn send(&self, bytes: &[u8]) -> Result<(), String> {
        self.nl.send(bytes)
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        self.nl.recv(buf)
    }

    /// Sends a batch and reads one acknowledgement per message; the first
    /// refusal is the error, naming what that message writes.
    fn transact(&self, batch: &Batch) -> Result<(), String> {
        self.send(&batch.bytes)?;
        let mut pending: std::collections::BTreeSet<u32> =
            batch.parts.iter().map(|(s, _)| *s).collect();
        let mut errors: Vec<(u32, Ack)> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !pending.is_empty() {
            let n = self.recv(&mut buf)?;
            for m in messages(&buf[..n]) {
                if m.ty != NLMSG_ERROR {
                    continue;
                }
                let ack = parse_ack(&m);
                let known = pending.remove(&m.seq);
                if ack.errno != 0 {
                    errors.push((m.seq, ack));
                    if !known {
                        // About the batch as a whole: nothing else comes.
                        pending.clear();
                    }
                }
            }
        }
        refusal(batch, errors)
    }

    /// One request; returns the payloads of the answers of type `answer`,
    /// or the kernel's error.
    fn request(
        &self,
        msg: u16,
        dump: bool,
        answer: u16,
        f: impl FnOnce(&mut Attrs),
    ) -> Result<Result<Vec<Vec<u8>>, Errno>, String> {
        let mut req = Vec::new();
        let flags = if dump { NLM_F_DUMP } else { NLM_F_ACK };
        message(&mut req, nft_type(msg), flags, 1, NFPROTO_INET, 0, f);
        self.send(&req)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv(&mut buf)?;
            for m in messages(&buf[..n]) {
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    return Ok(Err(Errno::EINTR));
                }
                match m.ty {
                    NLMSG_DONE => return Ok(Ok(out)),
                    NLMSG_ERROR => {
                        let ack = parse_ack(&m);
                        return Ok(if ack.errno == 0 {
                            Ok(out)
                        } else {
                            Err(Errno::from_raw(ack.errno))
                        });
                    }
                    t if t == nft_type(answer) => out.push(m.payload.to_vec()),
                    _ => {}
                }
            }
        }
    }

    fn generation(&self) -> Result<u32, String> {
        let msgs = self
            .request(NFT_MSG_GETGEN, false, NFT_MSG_NEWGEN, |_| {})?
            .map_err(|e| sys("cannot read the generation", e))?;
        msgs.first()
            .and_then(|m| find(&attrs(&m[NFGENMSG_LEN..]), NFTA_GEN_ID))
            .and_then(|a| a.be32())
            .ok_or_else(|| "nftables netlink: no generation in the answer".to_string())
    }

    /// Everything in the table, or None when it does not exist.
    fn dump(&self, table: &str) -> Result<Option<dump::Dump>, String> {
        let read =
            |msg: u16, answer: u16, name: &str, table_attr: u16, extra: Option<(u16, &str)>| {
                let r = self.request(msg, true, answer, |a| {
                    a.str(table_attr, table);
                    if let Some((ty, v)) = extra {
                        a.str(ty, v);
                    }
                })?;
                let all =
                    r.map_err(|e| sys(&format!("cannot list the {name} of table {table}"), e))?;
                Ok::<_, String>(
                    all.into_iter()
                        .filter(|m| dump::in_table(m, table_attr, table))
                        .collect::<Vec<_>>(),
                )
            };
        let t = match self.request(NFT_MSG_GETTABLE, false, NFT_MSG_NEWTABLE, |a| {
            a.str(NFTA_TABLE_NAME, table);
        })? {
            Ok(t) => t,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(sys(&format!("cannot read table {table}"), e)),
        };
        let Some(table_msg) = t.into_iter().next() else {
            return Ok(None);
        };
        let mut d = dump::Dump {
            table: table_msg,
            objects: read(
                NFT_MSG_GETOBJ,
                NFT_MSG_NEWOBJ,
                "objects",
                NFTA_OBJ_TABLE,
                None,
            )?,
            chains: read(
                NFT_MSG_GETCHAIN,
                NFT_MSG_NEWCHAIN,
                "chains",
                NFTA_CHAIN_TABLE,
                None,
            )?,
            sets: read(NFT_MSG_GETSET, NFT_MSG_NEWSET, "sets", NFTA_SET_TABLE, None)?,
            elements: Vec::new(),
            rules: read(
                NFT_MSG_GETRULE,
                NFT_MSG_NEWRULE,
                "rules",
                NFTA_RULE_TABLE,
                None,
            )?,
        };
        for s in &d.sets {
            let name = find(&attrs(&s[NFGENMSG_LEN..]), NFTA_SET_NAME)
                .map(|a| a.str().to_string())
                .unwrap_or_default();
            let elems = read(
                NFT_MSG_GETSETELEM,
                NFT_MSG_NEWSETELEM,
                "set elements",
                NFTA_SET_ELEM_LIST_TABLE,
                Some((NFTA_SET_ELEM_LIST_SET, &name)),
            )?;
            d.elements.push((name, elems));
        }
        Ok(Some(d))
    }
}

/// The batch's outcome from its refusals: the first one names what its
/// message writes (chain and rule with its text, set, counter, table).
fn refusal(batch: &Batch, mut errors: Vec<(u32, Ack)>) -> Result<(), String> {
    errors.retain(|(_, a)| a.errno != 0);
    errors.sort_by_key(|(seq, _)| *seq);
    let Some((seq, ack)) = errors.first() else {
        return Ok(());
    };
    let what = batch.what(*seq).unwrap_or("the batch");
    let mut e = format!(
        "the kernel refused {what}: {}",
        Errno::from_raw(ack.errno).desc()
    );
    if let Some(msg) = &ack.message {
        e.push_str(&format!(" ({msg})"));
    }
    if ack.errno == libc::ENOENT && what.starts_with("chain ") && what.contains(", rule ") {
        e.push_str(" (an expression the kernel lacks? check its nf_tables modules)");
    }
    if errors.len() > 1 {
        e.push_str(&format!("; {} more message(s) refused", errors.len() - 1));
    }
    Err(e)
}

/// An NLMSG_ERROR: 0 for an acknowledgement, else the errno, with the
/// kernel's extended-ack message when it gave one.
#[derive(Debug, PartialEq)]
struct Ack {
    errno: i32,
    message: Option<String>,
}

fn parse_ack(m: &Msg) -> Ack {
    let p = m.payload;
    let errno = p
        .get(..4)
        .map(|b| -i32::from_ne_bytes(b.try_into().unwrap()))
        .unwrap_or(libc::EPROTO);
    let mut message = None;
    if m.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 4 + NLMSG_HDRLEN {
        // The request's header follows, and its payload too unless capped.
        let orig_len = u32::from_ne_bytes(p[4..8].try_into().unwrap()) as usize;
        let skip = if m.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            (orig_len + 3) & !3
        };
        if let Some(tlvs) = p.get(4 + skip..) {
            message = find(&attrs(tlvs), NLMSGERR_ATTR_MSG).map(|a| a.str().to_string());
        }
    }
    Ack { errno, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ruleset::Item;

    fn ack(errno: i32) -> Ack {
        Ack {
            errno,
            message: None,
        }
    }

    #[test]
    fn a_refusal_names_the_rule_with_its_text() {
        let t = Table {
            name: "portal".into(),
            counters: vec!["c".into()],
            flowtables: Vec::new(),
            chains: vec![Chain {
                name: "input".into(),
                kind: ChainKind::Filter,
                hook: Hook::Input,
                priority: Priority::Filter,
                policy: Verdict::Drop,
                rules: vec![Rule::new(vec![
                    Item::Stmt(Stmt::Counter("c".into())),
                    Verdict::Drop.into(),
                ])
                .comment("why")],
            }],
        };
        let b = encode::replace(&t, &|_| None, 1).unwrap();
        let rule_seq = b.parts.last().unwrap().0;
        assert_eq!(refusal(&b, vec![(2, ack(0))]), Ok(()));
        let e = refusal(
            &b,
            vec![
                (rule_seq, ack(libc::ENOENT)),
                (rule_seq + 9, ack(libc::EINVAL)),
            ],
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "the kernel refused chain input, rule 1 (counter name \"c\" drop comment \"why\"): No such file or directory"
            ),
            "{e}"
        );
        assert!(e.ends_with("; 1 more message(s) refused"), "{e}");
        let e = refusal(&b, vec![(3, ack(libc::EPERM))]).unwrap_err();
        assert!(
            e.starts_with("the kernel refused delete table inet portal: Operation not permitted"),
            "{e}"
        );
    }

    #[test]
    fn an_extended_ack_carries_the_kernel_message() {
        // NLMSG_ERROR payload: -errno, the request's (capped) header, TLVs.
        let mut p = (-libc::EINVAL).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; NLMSG_HDRLEN]);
        Attrs::new(&mut p).str(NLMSGERR_ATTR_MSG, "bad thing");
        let m = Msg {
            ty: NLMSG_ERROR,
            flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
            seq: 5,
            payload: &p,
        };
        let a = parse_ack(&m);
        assert_eq!(a.errno, libc::EINVAL);
        assert_eq!(a.message.as_deref(), Some("bad thing"));
    }
}
