//! Long runs of route changes become one batch: written over netlink many
//! messages per send (kernel/routes.rs), and printed as a summary with the
//! first few commands, so that `portal plan` stays readable with 100,000
//! routes. Short runs stay single changes (plans without split lists keep
//! their one command per route).

use super::{route_spec, Change};
use crate::core::desired::{Route, PROTO};
use std::collections::BTreeSet;
use std::fmt;

/// Runs longer than this are batched.
pub const BATCH_MIN: usize = 16;
/// Commands a batch shows.
const SHOWN: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOp {
    Add,
    /// Add, or take the place of another owner's route in the same slot
    /// (table, destination, metric).
    Replace,
    Del,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteBatch {
    pub op: RouteOp,
    pub routes: Vec<Route>,
}

impl RouteBatch {
    pub fn command(&self, r: &Route) -> String {
        match self.op {
            RouteOp::Add => format!("ip route add {} proto {PROTO}", route_spec(r)),
            RouteOp::Replace => format!("ip route replace {} proto {PROTO}", route_spec(r)),
            RouteOp::Del => format!("ip route del {}", route_spec(r)),
        }
    }
}

impl fmt::Display for RouteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables: BTreeSet<u32> = self.routes.iter().map(|r| r.table).collect();
        let tables: Vec<String> = tables.iter().map(|t| super::table_name(*t)).collect();
        let verb = match self.op {
            RouteOp::Add => "add",
            RouteOp::Replace => "replace",
            RouteOp::Del => "delete",
        };
        // A comment, not commands: running the plan must not half-apply it.
        write!(
            f,
            "# route batch: {verb} {} route(s) in table {} over netlink; the first {}:",
            self.routes.len(),
            tables.join(","),
            SHOWN.min(self.routes.len())
        )?;
        for r in self.routes.iter().take(SHOWN) {
            write!(f, "\n#   {}", self.command(r))?;
        }
        if self.routes.len() > SHOWN {
            write!(f, "\n#   ... and {} more", self.routes.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Merges each run of more than BATCH_MIN consecutive route additions (or
/// deletions) into one batch; the order of changes is kept.
pub fn group(changes: Vec<Change>) -> Vec<Change> {
    let mut out = Vec::with_capacity(changes.len());
    let mut run: Option<RouteBatch> = None;
    let flush = |run: &mut Option<RouteBatch>, out: &mut Vec<Change>| {
        if let Some(b) = run.take() {
            if b.routes.len() > BATCH_MIN {
                out.push(Change::Routes(b));
            } else {
                out.extend(b.routes.into_iter().map(|r| match b.op {
                    RouteOp::Add => Change::RouteAdd(r),
                    RouteOp::Replace => Change::RouteReplace(r),
                    RouteOp::Del => Change::RouteDel(r),
                }));
            }
        }
    };
    for c in changes {
        let (op, r) = match c {
            Change::RouteAdd(r) => (RouteOp::Add, r),
            Change::RouteReplace(r) => (RouteOp::Replace, r),
            Change::RouteDel(r) => (RouteOp::Del, r),
            other => {
                flush(&mut run, &mut out);
                out.push(other);
                continue;
            }
        };
        match &mut run {
            Some(b) if b.op == op => b.routes.push(r),
            _ => {
                flush(&mut run, &mut out);
                run = Some(RouteBatch {
                    op,
                    routes: vec![r],
                });
            }
        }
    }
    flush(&mut run, &mut out);
    out
}
