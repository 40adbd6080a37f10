//! The config file as written by a person: JSON, parsed with serde.
//!
//! Values that need checking (addresses, keys, names) stay strings here so
//! that validation (model.rs) can name the exact JSON path of a bad value.
//! Unknown fields are refused: a typo must not silently drop a setting.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub hostname: Option<String>,
    /// `auto` (kernel WireGuard when the kernel has it, else wireguard-go),
    /// `kernel` or `userspace`.
    #[serde(default)]
    pub wireguard_backend: Backend,
    pub wan: Wan,
    #[serde(default)]
    pub lans: BTreeMap<String, Lan>,
    #[serde(default)]
    pub portals: BTreeMap<String, Portal>,
    /// The web status page; absent means on, port 80, every LAN.
    #[serde(default)]
    pub status_page: Option<StatusPage>,
    /// WiFi radios by interface name (country, band, channel); a radio
    /// used by a LAN's `wifi` but not listed here runs 2.4 GHz channel 6.
    #[serde(default)]
    pub radios: BTreeMap<String, Radio>,
    /// Forward established TCP/UDP flows through an nftables flowtable
    /// (past the IP stack's chains) when the kernel has flowtables; absent
    /// means on.
    #[serde(default)]
    pub fast_path: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Radio {
    /// ISO 3166-1 alpha-2 (FR, US...); required for 5 GHz.
    #[serde(default)]
    pub country: Option<String>,
    /// "2.4" (default) or "5".
    #[serde(default)]
    pub band: Option<String>,
    /// Default 6 on 2.4 GHz, 36 on 5 GHz.
    #[serde(default)]
    pub channel: Option<u8>,
}

/// A LAN that is an SSID (hostapd on a radio).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Wifi {
    /// The radio's interface; default: the LAN's interface (the radio's
    /// first SSID). A second SSID names its radio here and its own
    /// interface as the LAN's (created by hostapd).
    #[serde(default)]
    pub radio: Option<String>,
    pub ssid: String,
    /// 8..63 printable ASCII characters.
    pub passphrase: String,
    /// "wpa2" (default), "wpa3" or "wpa2-wpa3".
    #[serde(default)]
    pub security: Option<String>,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub client_isolation: bool,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct StatusPage {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// TCP port; default 80.
    #[serde(default)]
    pub port: Option<u16>,
    /// LAN names to serve on; default: every LAN.
    #[serde(default)]
    pub lans: Option<Vec<String>>,
    /// A plain-HTTP URL that answers with the caller's address, fetched
    /// through each portal to show where its traffic exits.
    #[serde(default)]
    pub probe_url: Option<String>,
    /// Seconds between probes; default 60.
    #[serde(default)]
    pub probe_interval: Option<u32>,
}

#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Auto,
    Kernel,
    Userspace,
}

/// Exactly one of `static` or `dhcp` must be given.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Wan {
    pub interface: String,
    #[serde(default, rename = "static")]
    pub static_: Option<StaticWan>,
    #[serde(default)]
    pub dhcp: Option<DhcpWan>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct StaticWan {
    pub address: String,
    pub gateway: String,
    #[serde(default)]
    pub dns: Vec<String>,
}

/// The WAN's DHCP client.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct DhcpWan {
    /// Host name sent to the ISP (option 12); default: the top-level `hostname`.
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Lan {
    pub interface: String,
    /// The router's address on the LAN, with the LAN's prefix length.
    pub address: String,
    /// A portal name, or "direct" (NAT out the WAN).
    pub via: String,
    /// Only for `via` a portal: refuse to forward the LAN anywhere but its portal.
    #[serde(default = "yes")]
    pub kill_switch: bool,
    /// A DHCP server on this LAN; absent means none.
    #[serde(default)]
    pub dhcp: Option<DhcpServer>,
    /// This LAN is an SSID; absent means wired.
    #[serde(default)]
    pub wifi: Option<Wifi>,
    /// Portal answers DNS on the LAN's router address; absent means not.
    #[serde(default)]
    pub dns: Option<LanDns>,
    /// Only for `via` a portal: destinations that bypass it, or the only
    /// ones that use it (model/split.rs).
    #[serde(default)]
    pub split: Option<Split>,
}

/// The LAN's DNS forwarder (src/dns/).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct LanDns {
    /// Upstream resolvers; default: the portal's `dns` (via a portal), the
    /// WAN's (direct).
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    /// Answers kept (src/dns/cache.rs); default 10000, 0 = no cache.
    #[serde(default)]
    pub cache: Option<u64>,
}

/// Split routing: exactly one kind, `direct*` (these destinations leave by
/// the WAN, the rest by the portal) or `portal*` (only these use the portal).
/// The files hold one CIDR per line; `#` comments and blank lines allowed.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Split {
    #[serde(default)]
    pub direct: Option<Vec<String>>,
    #[serde(default)]
    pub direct_files: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub portal: Option<Vec<String>>,
    #[serde(default)]
    pub portal_files: Option<Vec<PathBuf>>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct DhcpServer {
    /// Addresses handed out; default: the whole prefix (minus the router,
    /// the network and broadcast addresses and the static leases).
    #[serde(default)]
    pub pool: Option<PoolRange>,
    /// Seconds; default 12 hours.
    #[serde(default)]
    pub lease_time: Option<u32>,
    /// DNS servers handed out (option 6); default: the WAN's static `dns`.
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub domain: Option<String>,
    /// Interface MTU handed out (option 26); default: not sent.
    #[serde(default)]
    pub mtu: Option<u16>,
    #[serde(default, rename = "static")]
    pub static_leases: Vec<StaticLease>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PoolRange {
    pub start: String,
    pub end: String,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct StaticLease {
    pub mac: String,
    pub address: String,
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    pub interface: String,
    pub private_key_file: PathBuf,
    #[serde(default)]
    pub listen_port: Option<u16>,
    pub address: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub table: Option<u32>,
    #[serde(default = "yes")]
    pub masquerade: bool,
    #[serde(default)]
    pub exit: bool,
    #[serde(default)]
    pub remote_subnets: Vec<String>,
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Accept road-warrior devices (phones, laptops) on this portal.
    #[serde(default)]
    pub clients: Option<Clients>,
    /// Resolvers reached through this portal's tunnel (wg-quick's `DNS =`);
    /// also the DNS of its road-warrior devices.
    #[serde(default)]
    pub dns: Vec<String>,
}

/// Road-warrior devices: peers with no endpoint, one /32 each inside the
/// portal's tunnel network (`portal peer add` makes them).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Clients {
    /// HOST:PORT the devices connect to (the router's public name and
    /// this portal's listen_port).
    pub endpoint: String,
    /// LANs the devices may reach; default: every LAN.
    #[serde(default)]
    pub lans: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    #[serde(default)]
    pub name: Option<String>,
    pub public_key: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub persistent_keepalive: Option<u16>,
    /// File holding wg-quick's PresharedKey (mode 0600).
    #[serde(default)]
    pub preshared_key_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

/// Parses JSON text, naming the path of a value of the wrong type or an
/// unknown field ("portals.paris.listen_port: expected a port 1..65535,
/// found string \"51820\" (line 29, column 28)").
pub fn parse(text: &str) -> Result<Config, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        describe(&path, e.inner())
    })
}

/// A parse error in the config's words, not Rust's: the JSON path (without
/// the `?` of a syntax error's unknown position), what was expected in
/// plain terms, and the line and column.
fn describe(path: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    // serde_json appends " at line L column C" itself.
    let full = e.to_string();
    let msg = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    let known: Vec<&str> = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .collect();
    let known = known.join(".").replace(".[", "[");
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            let msg = msg.replace("EOF while parsing", "the file ends inside");
            let inside = if known.is_empty() {
                String::new()
            } else {
                format!(", inside {known}")
            };
            format!("config: not valid JSON ({at}{inside}): {msg}")
        }
        Category::Data => {
            let last = known.rsplit(['.', '[']).next().unwrap_or("");
            let msg = plain_expectation(msg, last.ends_with("port"));
            if known.is_empty() {
                format!("config: {msg} ({at})")
            } else {
                format!("{known}: {msg} ({at})")
            }
        }
    }
}

/// "invalid type: string \"x\", expected u16" -> "expected a whole number
/// 0..65535, found string \"x\"": serde's type names said in plain words.
fn plain_expectation(msg: &str, is_port: bool) -> String {
    let split = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .and_then(|rest| rest.rsplit_once(", expected "));
    let Some((found, expected)) = split else {
        return msg.to_string();
    };
    let expected = match expected {
        "u16" if is_port => "a port 1..65535",
        "u8" => "a whole number 0..255",
        "u16" => "a whole number 0..65535",
        "u32" => "a whole number 0..4294967295",
        "u64" | "usize" => "a whole number 0 or more",
        "a boolean" => "true or false",
        "a sequence" => "a list [...]",
        "a map" => "an object {...}",
        s if s.starts_with("struct ") => "an object {...}",
        s => s,
    };
    let found = match found {
        "map" => "an object".to_string(),
        "sequence" => "a list".to_string(),
        f => f.replace('`', ""),
    };
    format!("expected {expected}, found {found}")
}
