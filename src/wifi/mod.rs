//! WiFi LANs: hostapd per radio, configured from the model (conf.rs),
//! started and watched by the agent (hostapd.rs) through its control
//! interface (ctrl.rs, bindgen bindings to wpa_ctrl.h). The parsing of
//! hostapd's replies and events is pure, here.

pub mod conf;
#[cfg(feature = "wifi")]
pub mod ctrl;
/// Builds without the `wifi` feature (the EdgeRouter X) have no bindings;
/// validation refuses WiFi LANs there, so this is never reached.
#[cfg(not(feature = "wifi"))]
#[path = "no_ctrl.rs"]
pub mod ctrl;
pub mod hostapd;

use serde::Serialize;

/// One associated station, from hostapd's `STA` replies.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Station {
    pub mac: String,
    pub connected_secs: Option<u64>,
    /// dBm as the driver reports it (absent on some drivers).
    pub signal_dbm: Option<i32>,
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    /// hostapd's flags: [AUTH][ASSOC][AUTHORIZED]...; AUTHORIZED means the
    /// 4-way handshake is done (the passphrase was right).
    pub authorized: bool,
}

/// `STA-FIRST` / `STA-NEXT` reply: the MAC on the first line, then
/// `key=value` lines. Empty or `FAIL` means no (more) station.
pub fn parse_station(reply: &str) -> Option<Station> {
    let mut lines = reply.lines();
    let mac = lines.next()?.trim();
    if !is_mac(mac) {
        return None;
    }
    let mut st = Station {
        mac: mac.to_ascii_lowercase(),
        ..Station::default()
    };
    for line in lines {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "connected_time" => st.connected_secs = v.parse().ok(),
            "signal" => st.signal_dbm = v.parse().ok(),
            "rx_bytes" => st.rx_bytes = v.parse().ok(),
            "tx_bytes" => st.tx_bytes = v.parse().ok(),
            "flags" => st.authorized = v.contains("[AUTHORIZED]"),
            _ => {}
        }
    }
    Some(st)
}

/// The parts of hostapd's `STATUS` reply that are shown: its interface
/// state (ENABLED, DISABLED, COUNTRY_UPDATE, ACS, HT_SCAN, DFS...) and the
/// frequency in use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApStatus {
    pub state: String,
    pub freq_mhz: Option<u32>,
}

pub fn parse_status(reply: &str) -> Option<ApStatus> {
    let mut st = ApStatus::default();
    for (k, v) in reply.lines().filter_map(|l| l.split_once('=')) {
        match k {
            "state" => st.state = v.to_string(),
            "freq" => st.freq_mhz = v.parse().ok(),
            _ => {}
        }
    }
    (!st.state.is_empty()).then_some(st)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connected(String),
    Disconnected(String),
    /// The 4-way handshake failed the way a wrong passphrase makes it fail.
    WrongPassphrase(String),
}

/// A control-interface event: `<3>AP-STA-CONNECTED 02:00:00:00:01:00 ...`.
pub fn parse_event(msg: &str) -> Option<Event> {
    let body = match msg.strip_prefix('<') {
        Some(rest) => rest.split_once('>')?.1,
        None => msg,
    };
    let mut words = body.split_whitespace();
    let kind = words.next()?;
    let mac = words.next().filter(|m| is_mac(m))?.to_ascii_lowercase();
    match kind {
        "AP-STA-CONNECTED" => Some(Event::Connected(mac)),
        "AP-STA-DISCONNECTED" => Some(Event::Disconnected(mac)),
        "AP-STA-POSSIBLE-PSK-MISMATCH" => Some(Event::WrongPassphrase(mac)),
        _ => None,
    }
}

fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.split(':').count() == 6
        && s.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
