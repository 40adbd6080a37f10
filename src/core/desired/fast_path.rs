//! The fast path in the desired table: a flowtable over the interfaces the
//! kernel has, when it has flowtables and the config keeps it on.

use crate::core::desired::Inputs;
use crate::core::firewall::{add_fast_path, fast_path_interfaces};
use crate::core::model::Model;
use crate::core::ruleset::Table;

/// Lists only interfaces the kernel has (kernels before 6.16 refuse a
/// flowtable naming another): a pass after one appears rewrites the table.
pub(super) fn add(m: &Model, inputs: &Inputs, nft: &mut Table) {
    let (true, Some(present)) = (m.fast_path, &inputs.fast_path_links) else {
        return;
    };
    let devices: Vec<String> = fast_path_interfaces(m)
        .into_iter()
        .filter(|i| present.contains(i))
        .collect();
    if !devices.is_empty() {
        add_fast_path(nft, devices);
    }
}

#[cfg(test)]
mod tests {
    use crate::core::desired::{desired, Inputs};
    use crate::core::model;

    fn site(extra: &str) -> model::Model {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/site.json")).unwrap();
        if !extra.is_empty() {
            let (k, val) = extra.split_once('=').unwrap();
            v[k] = serde_json::from_str(val).unwrap();
        }
        model::validate(&crate::core::config::parse(&v.to_string()).unwrap()).unwrap()
    }

    fn with_links(links: &[&str]) -> Inputs {
        Inputs {
            fast_path_links: Some(links.iter().map(|l| l.to_string()).collect()),
            ..Inputs::default()
        }
    }

    #[test]
    fn the_flowtable_lists_the_interfaces_the_kernel_has_and_flow_add_precedes_the_accept() {
        let m = site("");
        let plain = desired(&m, &Inputs::default()).nft.to_string();
        assert!(!plain.contains("flowtable") && !plain.contains("flow add"));
        // The tunnel (wg-paris) and eth2 are not there yet.
        let text = desired(&m, &with_links(&["lo", "eth0", "eth1"]))
            .nft
            .to_string();
        assert!(
            text.contains(
                "\tflowtable fastpath {\n\t\thook ingress priority filter\n\t\tdevices = { eth0, eth1 }\n\t}\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\t\tct state established flow add @fastpath comment \"fast path\"\n\t\tct state established,related accept\n"
            ),
            "{text}"
        );
        // Nothing else changes: without those lines it is the plain table.
        let without: String = text
            .split_inclusive('\n')
            .filter(|l| !l.contains("flow add"))
            .collect::<String>()
            .replace(
                "\tflowtable fastpath {\n\t\thook ingress priority filter\n\t\tdevices = { eth0, eth1 }\n\t}\n",
                "",
            );
        assert_eq!(without, plain);
        // When the tunnel appears, the table changes (the agent rewrites it).
        let later = desired(&m, &with_links(&["eth0", "eth1", "eth2", "wg-paris"])).nft;
        assert_eq!(
            later.flowtables[0].devices,
            ["eth0", "eth2", "eth1", "wg-paris"].map(String::from)
        );
    }

    #[test]
    fn without_fast_path_gives_back_the_plain_table() {
        let m = site("");
        let plain = desired(&m, &Inputs::default()).nft;
        let fast = desired(&m, &with_links(&["eth0", "eth1"])).nft;
        assert_ne!(fast, plain);
        assert_eq!(crate::core::firewall::without_fast_path(&fast), plain);
    }

    #[test]
    fn no_fast_path_when_the_config_turns_it_off_or_no_interface_is_there() {
        let off = site("fast_path=false");
        assert!(!off.fast_path);
        let d = desired(&off, &with_links(&["eth0", "eth1"]));
        assert!(d.nft.flowtables.is_empty());
        let d = desired(&site(""), &with_links(&["lo"]));
        assert!(d.nft.flowtables.is_empty() && !d.nft.to_string().contains("flow add"));
    }
}
