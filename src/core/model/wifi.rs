//! Validation of WiFi: a LAN with a `wifi` section is an SSID served by
//! hostapd on a radio; `radios` holds each radio's country, band and
//! channel. Several SSIDs may share a radio (one LAN, and so one portal or
//! `direct`, per SSID): the first uses the radio's own interface, the
//! others interfaces that hostapd creates (`bss=` in hostapd.conf).

use super::Errors;
use crate::core::config::{self, Config};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// 2.4 GHz (hostapd hw_mode g).
    Ghz2,
    /// 5 GHz (hw_mode a).
    Ghz5,
}

impl Band {
    pub fn label(self) -> &'static str {
        match self {
            Band::Ghz2 => "2.4",
            Band::Ghz5 => "5",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// WPA2-Personal (PSK, CCMP).
    Wpa2,
    /// WPA3-Personal (SAE, management frame protection required).
    Wpa3,
    /// Both, for networks with older devices (PSK + SAE, MFP optional).
    Wpa2Wpa3,
}

/// A secret that never shows in Debug output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(hidden)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Radio {
    /// The radio's own network interface (wlan0).
    pub interface: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub band: Band,
    pub channel: u8,
    /// The SSIDs, the one on the radio's own interface first.
    pub bsses: Vec<Bss>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bss {
    /// The LAN this SSID is.
    pub lan: String,
    pub interface: String,
    pub ssid: String,
    pub passphrase: Secret,
    pub security: Security,
    pub hidden: bool,
    /// Stations may not reach each other through the access point.
    pub client_isolation: bool,
}

impl Radio {
    /// DFS channels: the radio must listen for radar before using them.
    pub fn dfs(&self) -> bool {
        self.band == Band::Ghz5 && (52..=144).contains(&self.channel)
    }
}

pub const DEFAULT_CHANNEL: u8 = 6;
const CHANNELS_5GHZ: [u8; 25] = [
    36, 40, 44, 48, 52, 56, 60, 64, 100, 104, 108, 112, 116, 120, 124, 128, 132, 136, 140, 144,
    149, 153, 157, 161, 165,
];

pub(super) fn validate(cfg: &Config, e: &mut Errors) -> Vec<Radio> {
    let mut radios: Vec<Radio> = Vec::new();
    for (name, r) in &cfg.radios {
        let at = format!("radios.{name}");
        if !cfg
            .lans
            .values()
            .any(|l| l.wifi.as_ref().is_some_and(|w| radio_of(l, w) == name))
        {
            e.add(&at, "no LAN has an SSID on this radio");
        }
        radios.push(validate_radio(name, r, &at, e));
    }
    for (lan_name, lan) in &cfg.lans {
        let Some(w) = &lan.wifi else { continue };
        let at = format!("lans.{lan_name}.wifi");
        if !cfg!(feature = "wifi") {
            e.add(
                &at,
                "this build of portal has no WiFi support (built without the `wifi` feature, as for the EdgeRouter X)",
            );
        }
        let radio_name = radio_of(lan, w).to_string();
        let bss = Bss {
            lan: lan_name.clone(),
            interface: lan.interface.clone(),
            ssid: w.ssid.clone(),
            passphrase: Secret(w.passphrase.clone()),
            security: parse_security(w.security.as_deref(), &at, e),
            hidden: w.hidden,
            client_isolation: w.client_isolation,
        };
        check_ssid(&w.ssid, &format!("{at}.ssid"), e);
        check_passphrase(&w.passphrase, &format!("{at}.passphrase"), e);
        if lan.interface.len() > 15 {
            e.add(
                format!("lans.{lan_name}.interface"),
                "longer than 15 characters (the kernel's limit)",
            );
        }
        match radios.iter_mut().find(|r| r.interface == radio_name) {
            Some(r) => r.bsses.push(bss),
            None => {
                // No `radios` entry: the defaults (2.4 GHz, channel 6).
                let defaults = config::Radio::default();
                let mut r = validate_radio(&radio_name, &defaults, "radios", e);
                r.bsses.push(bss);
                radios.push(r);
            }
        }
    }
    for r in &mut radios {
        // The SSID on the radio's own interface first: hostapd's first BSS.
        r.bsses.sort_by_key(|b| b.interface != r.interface);
        if !r.bsses.is_empty() && r.bsses[0].interface != r.interface {
            e.add(
                format!("lans.{}.wifi.radio", r.bsses[0].lan),
                format!(
                    "radio {} has no SSID on its own interface: the first SSID of a radio is the LAN whose interface is {}",
                    r.interface, r.interface
                ),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for b in &r.bsses {
            if seen.contains(&b.ssid.as_str()) {
                e.add(
                    format!("lans.{}.wifi.ssid", b.lan),
                    format!("`{}` is already an SSID on radio {}", b.ssid, r.interface),
                );
            }
            seen.push(&b.ssid);
        }
    }
    radios.retain(|r| !r.bsses.is_empty());
    radios
}

fn radio_of<'a>(lan: &'a config::Lan, w: &'a config::Wifi) -> &'a str {
    w.radio.as_deref().unwrap_or(&lan.interface)
}

fn validate_radio(name: &str, r: &config::Radio, at: &str, e: &mut Errors) -> Radio {
    let band = match r.band.as_deref() {
        None | Some("2.4") => Band::Ghz2,
        Some("5") => Band::Ghz5,
        Some(other) => {
            e.add(
                format!("{at}.band"),
                format!("`{other}` is not a band: \"2.4\" or \"5\""),
            );
            Band::Ghz2
        }
    };
    let country = r.country.as_ref().map(|c| {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            e.add(
                format!("{at}.country"),
                format!("`{c}` is not a two-letter country code in capitals (FR, US, DE...)"),
            );
        }
        c.clone()
    });
    let channel = r.channel.unwrap_or(match band {
        Band::Ghz2 => DEFAULT_CHANNEL,
        Band::Ghz5 => 36,
    });
    match band {
        Band::Ghz2 => {
            if !(1..=13).contains(&channel) {
                e.add(
                    format!("{at}.channel"),
                    format!("{channel} is not a 2.4 GHz channel (1..13)"),
                );
            }
        }
        Band::Ghz5 => {
            if !CHANNELS_5GHZ.contains(&channel) {
                e.add(
                    format!("{at}.channel"),
                    format!("{channel} is not a 5 GHz channel (36, 40, ... 64, 100, ... 144, 149, ... 165)"),
                );
            }
            if country.is_none() {
                e.add(
                    format!("{at}.country"),
                    "required for 5 GHz: the allowed channels and power depend on the country",
                );
            }
        }
    }
    Radio {
        interface: name.to_string(),
        country,
        band,
        channel,
        bsses: Vec::new(),
    }
}

fn parse_security(s: Option<&str>, at: &str, e: &mut Errors) -> Security {
    match s {
        None | Some("wpa2") => Security::Wpa2,
        Some("wpa3") => Security::Wpa3,
        Some("wpa2-wpa3") => Security::Wpa2Wpa3,
        Some(other) => {
            e.add(
                format!("{at}.security"),
                format!("`{other}` is not one of wpa2, wpa3, wpa2-wpa3"),
            );
            Security::Wpa2
        }
    }
}

fn check_ssid(ssid: &str, at: &str, e: &mut Errors) {
    if ssid.is_empty() || ssid.len() > 32 {
        e.add(
            at,
            format!("{} bytes: an SSID has 1 to 32 bytes", ssid.len()),
        );
    }
    if ssid.chars().any(char::is_control) {
        e.add(at, "contains a control character");
    }
}

/// WPA's passphrase: 8 to 63 printable ASCII characters (IEEE 802.11i).
/// The length is named, never the value.
fn check_passphrase(p: &str, at: &str, e: &mut Errors) {
    if !p.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        e.add(
            at,
            "only printable ASCII characters (letters, digits, spaces, punctuation)",
        );
    } else if !(8..=63).contains(&p.len()) {
        e.add(
            at,
            format!("{} characters: a passphrase has 8 to 63", p.len()),
        );
    }
}
