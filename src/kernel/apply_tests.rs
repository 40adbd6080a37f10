//! `Kernel::apply` against the real kernel, in a network namespace of the
//! test's own thread (unshare(CLONE_NEWNET) moves only that thread): it
//! needs root, and says it skipped without it.

use super::Kernel;
use crate::core::cidr::Cidr;
use crate::core::config::Backend;
use crate::core::desired::{Address, Route, RouteKind, Rule};
use crate::core::diff::batch::{RouteBatch, RouteOp};
use crate::core::diff::Change;
use crate::testdir::TestDir;

/// Runs `f` on a thread in a new, empty network namespace, with a
/// current-thread runtime (so netlink sockets open in that namespace).
fn in_new_netns<T: Send + 'static, F: std::future::Future<Output = T>>(
    f: impl FnOnce() -> F + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!("skipped: unshare(CLONE_NEWNET) needs root");
            return None;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Some(rt.block_on(f()))
    })
    .join()
    .expect("netns thread")
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

#[test]
fn removing_what_is_already_gone_is_done_not_an_error() {
    let dir = TestDir::new("kernel-apply");
    let (run, state) = (dir.path().join("run"), dir.path().join("state"));
    let report = in_new_netns(move || async move {
        let mut k = Kernel::new(Backend::Auto, run, state).unwrap();
        let route = |dst: &str| Route {
            table: 52001,
            dst: cidr(dst),
            kind: RouteKind::Unreachable,
            metric: 0,
        };
        k.apply(&[
            Change::RouteDel(route("10.1.0.0/16")),
            Change::Routes(RouteBatch {
                op: RouteOp::Del,
                routes: vec![route("10.2.0.0/16"), route("10.3.0.0/16")],
            }),
            Change::RuleDel(Rule {
                priority: 32001,
                from: Some(cidr("192.168.77.0/24")),
                to: None,
                table: 52001,
            }),
            Change::AddrDel(Address {
                dev: "lo".into(),
                cidr: cidr("10.9.9.9/32"),
            }),
            Change::LinkDel("wg-gone".into()),
            // Through an interface that is gone: it went with it.
            Change::RouteDel(Route {
                kind: RouteKind::Dev("gone0".into()),
                ..route("10.4.0.0/16")
            }),
            // Not a removal: a missing interface is a failure.
            Change::AddrAdd(Address {
                dev: "nowhere0".into(),
                cidr: cidr("10.9.9.9/32"),
            }),
        ])
        .await
    });
    let Some(report) = report else { return };
    assert_eq!(report.applied.len(), 6, "{report:?}");
    assert_eq!(
        report.errors,
        vec!["step `ip address add 10.9.9.9/32 dev nowhere0  # marked proto 52` failed: interface nowhere0 does not exist"],
    );
}

#[test]
fn a_fast_path_the_kernel_refuses_leaves_the_rest_of_the_table_written() {
    use crate::core::firewall::{add_fast_path, ruleset, without_fast_path, NFT_TABLE};
    let cfg = crate::core::config::parse(include_str!("../../examples/site.json")).unwrap();
    let mut table = ruleset(&crate::core::model::validate(&cfg).unwrap());
    add_fast_path(&mut table, vec!["lo".into()]);
    let dir = TestDir::new("kernel-fastpath");
    let (run, state) = (dir.path().join("run"), dir.path().join("state"));
    let state_read = state.clone();
    let wanted = table.clone();
    let outcome = in_new_netns(move || async move {
        let mut k = Kernel::new(Backend::Auto, run, state).unwrap();
        let report = k.apply(&[Change::NftReplace(wanted)]).await;
        let listed = super::nftables::listing(NFT_TABLE).unwrap().is_some();
        (report, listed, super::nftables::flowtables_supported())
    });
    let Some((report, listed, supported)) = outcome else {
        return;
    };
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(listed, "table inet portal written");
    let recorded = crate::state::load_nft(&state_read).unwrap().ruleset;
    if supported {
        assert_eq!(recorded, table.to_string());
    } else {
        // This kernel has no flowtables: written without the fast path,
        // and recorded so, so that the next pass tries the full table.
        assert_eq!(recorded, without_fast_path(&table).to_string());
    }
}
