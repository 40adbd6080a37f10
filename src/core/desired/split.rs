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
use crate::core::cidr::Cidr;
use crate::core::model::{Portal, Split, SplitKind};

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

#[cfg(test)]
mod tests {
    use crate::core::desired::{desired, Inputs, Route, RouteKind, KILL_SWITCH_METRIC};
    use crate::core::diff::batch::{RouteOp, BATCH_MIN};
    use crate::core::diff::{diff, Change, Observed};
    use crate::core::model::{self, split::Files};

    /// examples/site.json with a `split` on its home LAN, and the portal's
    /// table set to `table`.
    fn site(split: &str, table: u32, files: &Files) -> Result<model::Model, Vec<String>> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/site.json")).unwrap();
        v["lans"]["home"]["split"] = serde_json::from_str(split).unwrap();
        v["portals"]["paris"]["table"] = table.into();
        let cfg = crate::core::config::parse(&v.to_string()).unwrap();
        model::validate_with(&cfg, files).map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    fn lines(n: usize) -> String {
        (0..n)
            .map(|i| format!("10.{}.{}.0/24\n", i / 256, i % 256))
            .collect()
    }

    #[test]
    fn the_lan_table_skips_portal_tables_and_the_rule_uses_it() {
        let m = site(r#"{"direct": ["192.0.2.0/24"]}"#, 52000, &Files::new()).unwrap();
        let s = m.lans.iter().find(|l| l.name == "home").unwrap();
        assert_eq!(s.split.as_ref().unwrap().table, 52001);
        let d = desired(&m, &Inputs::default());
        assert!(d
            .rules
            .iter()
            .any(|r| r.from == Some(s.address.network()) && r.table == 52001));
        let mine: Vec<&Route> = d.routes.iter().filter(|r| r.table == 52001).collect();
        let kinds: Vec<(String, &RouteKind, u32)> = mine
            .iter()
            .map(|r| (r.dst.to_string(), &r.kind, r.metric))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    "0.0.0.0/0".into(),
                    &RouteKind::Unreachable,
                    KILL_SWITCH_METRIC
                ),
                ("0.0.0.0/0".into(), &RouteKind::Dev("wg-paris".into()), 0),
                ("192.0.2.0/24".into(), &RouteKind::Throw, 0),
            ]
        );
    }

    #[test]
    fn a_portal_list_has_a_kill_switch_per_prefix_and_no_default() {
        let m = site(r#"{"portal": ["192.0.2.0/24"]}"#, 51820, &Files::new()).unwrap();
        let d = desired(&m, &Inputs::default());
        let mine: Vec<String> = d
            .routes
            .iter()
            .filter(|r| r.table == 52000)
            .map(|r| format!("{} {:?} {}", r.dst, r.kind, r.metric))
            .collect();
        assert_eq!(
            mine,
            [
                "192.0.2.0/24 Unreachable 4000",
                "192.0.2.0/24 Dev(\"wg-paris\") 0"
            ]
        );
        // The firewall lets the LAN out the WAN too, before its kill switch.
        let fw = d.nft.to_string();
        let wan = fw.find("iifname \"eth1\" oifname \"eth0\" accept").unwrap();
        let kill = fw.find("kill switch home via paris").unwrap();
        assert!(wan < kill, "{fw}");
        assert!(fw.contains("oifname \"eth0\" ip saddr 192.168.10.0/24 masquerade"));
    }

    #[test]
    fn long_lists_are_batched_kill_switch_first_and_updated_by_diff() {
        let mut files = Files::new();
        files.insert("/l".into(), Ok(lines(1000)));
        let m = site(r#"{"portal_files": ["/l"]}"#, 51820, &files).unwrap();
        let d = desired(&m, &Inputs::default());
        let plan = diff(&d, &Observed::default(), None);
        let batches: Vec<(usize, &crate::core::diff::batch::RouteBatch)> = plan
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Change::Routes(b) => Some((i, b)),
                _ => None,
            })
            .collect();
        // The kill switch (1000 unreachable routes) before any device or path.
        let (first, kill) = batches[0];
        assert!(kill.routes.iter().all(Route::is_kill_switch));
        assert!(plan[first].is_kill_switch());
        assert!(plan[..first]
            .iter()
            .all(|c| !matches!(c, Change::WgCreate { .. })));
        let shown = plan[first].to_string();
        assert_eq!(shown.lines().count(), 5, "{shown}");
        assert!(
            shown.starts_with(
                "# route batch: add 1001 route(s) in table 51820,52000 over netlink; the first 3:"
            ),
            "{shown}"
        );
        assert!(shown.contains(
            "\n#   ip route add unreachable 10.0.0.0/24 table 52000 metric 4000 proto 52"
        ));

        // The kernel has it all; the list loses 10 and gains 20: one batch
        // each way, with exactly those routes.
        let mut o = Observed {
            routes: d.routes.clone(),
            ..Observed::default()
        };
        o.routes.sort();
        let mut text: String = lines(1020)
            .lines()
            .skip(10)
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str("# end\n");
        files.insert("/l".into(), Ok(text));
        let m2 = site(r#"{"portal_files": ["/l"]}"#, 51820, &files).unwrap();
        let d2 = desired(&m2, &Inputs::default());
        let routes: Vec<Change> = diff(&d2, &o, None)
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    Change::Routes(_) | Change::RouteAdd(_) | Change::RouteDel(_)
                )
            })
            .collect();
        let sizes: Vec<(RouteOp, usize)> = routes
            .iter()
            .map(|c| match c {
                Change::Routes(b) => (b.op, b.routes.len()),
                Change::RouteAdd(_) => (RouteOp::Add, 1),
                _ => (RouteOp::Del, 1),
            })
            .collect();
        // 20 kill-switch routes, 20 dev routes, 20 deletions (10 prefixes x 2).
        assert_eq!(
            sizes,
            [(RouteOp::Add, 20), (RouteOp::Add, 20), (RouteOp::Del, 20)]
        );
        const { assert!(BATCH_MIN < 20) };
    }

    #[test]
    fn short_runs_stay_single_commands() {
        let m = site(r#"{"direct": ["192.0.2.0/24"]}"#, 51820, &Files::new()).unwrap();
        let plan = diff(&desired(&m, &Inputs::default()), &Observed::default(), None);
        assert!(plan.iter().all(|c| !matches!(c, Change::Routes(_))));
        let text: Vec<String> = plan.iter().map(|c| c.to_string()).collect();
        assert!(text.contains(&"ip route add throw 192.0.2.0/24 table 52000 proto 52".to_string()));
    }
}
