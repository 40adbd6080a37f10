//! Every command's arguments, declared once (argh derive): the parser, the
//! `--help` of each command and the error for a bad argument come from
//! these declarations. argh, not clap: it adds a few KB to the binary where
//! clap adds hundreds, and the ER-X's binary has a 3 MB budget.

use argh::FromArgs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// The agent's default `--state-dir`.
pub const STATE_DIR: &str = "/var/lib/portal";
/// The agent's default `--run-dir`.
pub const RUN_DIR: &str = "/run/portal";

fn default_state_dir() -> PathBuf {
    PathBuf::from(STATE_DIR)
}

fn default_run_dir() -> PathBuf {
    PathBuf::from(RUN_DIR)
}

#[derive(FromArgs, Debug)]
/// Portal: routes LANs transparently out WireGuard portals. One JSON config
/// (README.md: the config reference); `portal COMMAND --help` for each command.
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Check(Check),
    Plan(Plan),
    Apply(Apply),
    Agent(Agent),
    Down(Down),
    Firewall(Firewall),
    FirewallDump(FirewallDump),
    FirewallDelete(FirewallDelete),
    Keygen(Keygen),
    Pubkey(Pubkey),
    Peer(Peer),
    Import(Import),
    Export(Export),
    Leases(Leases),
    Doctor(Doctor),
    Trace(Trace),
    Init(Init),
    Poweroff(Poweroff),
    Reboot(Reboot),
    Halt(Halt),
    Upgrade(Upgrade),
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
/// validate the config; exit 0 if valid, 2 if not (every problem listed, by JSON path).
pub struct Check {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "plan")]
/// print the setup as sysctl/ip/wg/nft commands, in the order Portal applies them.
pub struct Plan {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "apply")]
/// bring the kernel to CONFIG once, by diff, and exit.
pub struct Apply {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// persistent state (default /var/lib/portal)
    #[argh(option, default = "default_state_dir()")]
    pub state_dir: PathBuf,
    /// runtime files and wireguard-go logs (default /run/portal)
    #[argh(option, default = "default_run_dir()")]
    pub run_dir: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "agent")]
/// apply, then keep it applied (netlink events, SIGHUP, config file changes, every --interval).
pub struct Agent {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// persistent state (default /var/lib/portal)
    #[argh(option, default = "default_state_dir()")]
    pub state_dir: PathBuf,
    /// runtime files and wireguard-go logs (default /run/portal)
    #[argh(option, default = "default_run_dir()")]
    pub run_dir: PathBuf,
    /// seconds between periodic passes (default 30)
    #[argh(option, default = "30")]
    pub interval: u64,
    /// seconds between resolutions of endpoint host names (default 60; every
    /// 15 while a peer's latest handshake is over 135 s old)
    #[argh(option, default = "60")]
    pub resolve_interval: u64,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "down")]
/// remove everything Portal added, and nothing else (CONFIG need not be valid).
pub struct Down {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// persistent state (default /var/lib/portal)
    #[argh(option, default = "default_state_dir()")]
    pub state_dir: PathBuf,
    /// runtime files and wireguard-go logs (default /run/portal)
    #[argh(option, default = "default_run_dir()")]
    pub run_dir: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "firewall")]
/// write only CONFIG's nftables table (inet portal), through netlink as the agent does.
pub struct Firewall {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "firewall-dump")]
/// print table inet portal as the agent reads it (normalized netlink dump); exit 1 if absent.
pub struct FirewallDump {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "firewall-delete")]
/// remove only table inet portal (nothing else); a running agent writes it again on its next pass.
pub struct FirewallDelete {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "keygen")]
/// write a new WireGuard private key to FILE (mode 0600, never overwrites); print its public key.
pub struct Keygen {
    /// the private key file to create
    #[argh(positional)]
    pub file: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pubkey")]
/// print the public key of a private key file.
pub struct Pubkey {
    /// the private key file
    #[argh(positional)]
    pub file: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "peer")]
/// road-warrior devices of a portal with `clients`: add, list, remove.
pub struct Peer {
    #[argh(subcommand)]
    pub command: PeerCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum PeerCommand {
    Add(PeerAdd),
    List(PeerList),
    Remove(PeerRemove),
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
/// a new device of portal P: key pair, tunnel address, the peer added to CONFIG (validated in
/// full, written atomically); prints the device's wg-quick .conf and its QR code.
pub struct PeerAdd {
    /// the device's name
    #[argh(positional)]
    pub name: String,
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// the portal the device joins (it must have `clients`)
    #[argh(option)]
    pub portal: String,
    /// route all the device's traffic through the router (AllowedIPs 0.0.0.0/0)
    #[argh(switch)]
    pub all_traffic: bool,
    /// also offer the .conf on the LANs' status page at /peer/NAME, once, for 15 minutes
    #[argh(switch)]
    pub page: bool,
    /// the device's tunnel address instead of the next free one (required when a site peer's
    /// allowed IPs cover the tunnel network, as an exit's 0.0.0.0/0 does)
    #[argh(option)]
    pub address: Option<IpAddr>,
    /// where --page leaves its offer: the agent's run directory (default /run/portal)
    #[argh(option, default = "default_run_dir()")]
    pub run_dir: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
/// every peer: portal, name, allowed IPs, endpoint or (device), public key.
pub struct PeerList {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "remove")]
/// remove device NAME from CONFIG.
pub struct PeerRemove {
    /// the device's name
    #[argh(positional)]
    pub name: String,
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// the portal it is in (needed when two portals have a peer of that name)
    #[argh(option)]
    pub portal: Option<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
/// add a wg-quick config as portal NAME (interface wg-NAME); refuses hooks, SaveConfig, FwMark,
/// Table = off (naming the line).
pub struct Import {
    /// the wg-quick config to import
    #[argh(positional)]
    pub conf: PathBuf,
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// the new portal's name
    #[argh(option)]
    pub name: String,
    /// where its keys are written, mode 0600 (default: CONFIG's directory)
    #[argh(option)]
    pub key_dir: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
/// write portal NAME as a wg-quick config (mode 0600; never to stdout: it holds the private key).
pub struct Export {
    /// the portal's name
    #[argh(positional)]
    pub name: String,
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// the .conf file to write (required)
    #[argh(option, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "leases")]
/// the WAN's DHCP lease and the leases on record for each LAN.
pub struct Leases {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// persistent state (default /var/lib/portal)
    #[argh(option, default = "default_state_dir()")]
    pub state_dir: PathBuf,
    /// machine-readable output
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "doctor")]
/// read-only checks (forwarding, rp_filter, MTU/MSS, handshakes, route back, allowed IPs, kill
/// switch, LAN DNS), each finding with its evidence and fix; exit 1 with findings.
pub struct Doctor {
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// findings as JSON
    #[argh(switch)]
    pub json: bool,
    /// the rp_filter counter window in milliseconds (default 1000)
    #[argh(option, default = "1000")]
    pub watch: u64,
    /// no route-back probes and no DNS queries
    #[argh(switch)]
    pub no_probe: bool,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "trace")]
/// the routing decision for a packet from a LAN to ADDR: rule, table, route, device and Portal's
/// forward verdict, simulated and checked against the kernel's own answer.
pub struct Trace {
    /// the destination
    #[argh(positional)]
    pub addr: Ipv4Addr,
    /// the config file
    #[argh(positional)]
    pub config: PathBuf,
    /// the LAN the packet arrives from
    #[argh(option)]
    pub from: String,
    /// the packet's source (default: the LAN's first host other than the router)
    #[argh(option)]
    pub src: Option<Ipv4Addr>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
/// run as PID 1 (automatic when started as PID 1): mounts, modules, services, shutdown.
pub struct Init {
    /// the init config (default /etc/portal/init.json)
    #[argh(positional)]
    pub config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "poweroff")]
/// ask PID 1 to power off.
pub struct Poweroff {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reboot")]
/// ask PID 1 to reboot.
pub struct Reboot {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "halt")]
/// ask PID 1 to halt.
pub struct Halt {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "upgrade")]
/// (installed disk form) write BUNDLE to the slot not running, boot it once and reboot; it
/// becomes the default when its agent reports healthy, else the next boot is the old slot.
pub struct Upgrade {
    /// the bundle: a file, or a disk holding it
    #[argh(positional)]
    pub bundle: PathBuf,
    /// write it but do not reboot now
    #[argh(switch)]
    pub no_reboot: bool,
}
