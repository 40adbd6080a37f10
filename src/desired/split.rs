//! A split LAN's own routing table (model/split.rs), looked up by the LAN's
//! rule instead of its portal's table.
//!
//! - `direct` lists: `throw PREFIX` ends this table's lookup and rule
//!   evaluation goes on to the main table (the WAN); a throw has no gateway,
//!   so a new DHCP gateway rewrites none of them. The rest goes into the
//!   portal, with the kill switch behind it.
//! - `portal` lists: `PREFIX dev WG` with an unreachable twin behind it (the
//!   kill switch, per prefix); no default route, so the rest falls through
//!   to the main table.

use super::{Route, RouteKind, KILL_SWITCH_METRIC};
use crate::cidr::Cidr;
use crate::model::{Portal, Split, SplitKind};

pub fn routes(s: &Split, p: &Portal, out: &mut Vec<Route>) {
    let route = |dst: Cidr, kind: RouteKind, metric: u32| Route {
        table: s.table,
        dst,
        kind,
        metric,
    };
    let dev = || RouteKind::Dev(p.interface.clone());
    match s.kind {
        SplitKind::Direct => {
            let default = Cidr::default_for(false);
            out.reserve(s.prefixes.len() + 2);
            out.push(route(default, RouteKind::Unreachable, KILL_SWITCH_METRIC));
            out.push(route(default, dev(), 0));
            out.extend(s.prefixes.iter().map(|c| route(*c, RouteKind::Throw, 0)));
        }
        SplitKind::Portal => {
            out.reserve(2 * s.prefixes.len());
            for c in &s.prefixes {
                out.push(route(*c, RouteKind::Unreachable, KILL_SWITCH_METRIC));
                out.push(route(*c, dev(), 0));
            }
        }
    }
}
