//! hostapd.conf for one radio, from the model: pure, golden-tested.
//!
//! The SSID is written hex-encoded (`ssid2=`), so no byte of it can end a
//! line or be read as syntax; the passphrase was checked to be printable
//! ASCII. The file holds the passphrase: it is written mode 0600 and never
//! logged.

use crate::core::model::wifi::{Band, Bss, Radio, Security};
use std::fmt::Write;

/// The control sockets' directory: hostapd makes one socket per BSS
/// interface there.
pub fn ctrl_dir(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir.join("hostapd")
}

pub fn render(radio: &Radio, ctrl_dir: &std::path::Path) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Written by Portal for radio {}: edits are overwritten.",
        radio.interface
    );
    let _ = writeln!(w, "driver=nl80211");
    if let Some(c) = &radio.country {
        // 802.11d: advertise the country, so stations use its rules.
        let _ = writeln!(w, "country_code={c}\nieee80211d=1");
    }
    if radio.dfs() {
        // Radar detection (DFS), required on these channels.
        let _ = writeln!(w, "ieee80211h=1");
    }
    let mode = match radio.band {
        Band::Ghz2 => "g",
        Band::Ghz5 => "a",
    };
    let _ = writeln!(w, "hw_mode={mode}\nchannel={}", radio.channel);
    let _ = writeln!(w, "ieee80211n=1\nwmm_enabled=1");
    if radio.band == Band::Ghz5 {
        let _ = writeln!(w, "ieee80211ac=1");
    }
    for (i, b) in radio.bsses.iter().enumerate() {
        let _ = writeln!(w);
        if i == 0 {
            let _ = writeln!(w, "interface={}", b.interface);
        } else {
            // Further SSIDs: hostapd creates these interfaces.
            let _ = writeln!(w, "bss={}", b.interface);
        }
        bss(w, b, ctrl_dir);
    }
    out
}

fn bss(w: &mut String, b: &Bss, ctrl_dir: &std::path::Path) {
    let _ = writeln!(w, "# LAN {}", b.lan);
    // Per SSID: each BSS gets its own socket (ctrl_dir/INTERFACE).
    let _ = writeln!(w, "ctrl_interface={}", ctrl_dir.display());
    let _ = writeln!(w, "ctrl_interface_group=0");
    let _ = writeln!(w, "ssid2={}", hex(b.ssid.as_bytes()));
    let _ = writeln!(w, "utf8_ssid=1");
    let _ = writeln!(w, "auth_algs=1\nwpa=2\nrsn_pairwise=CCMP");
    let (key_mgmt, mfp) = match b.security {
        Security::Wpa2 => ("WPA-PSK", 0),
        // 802.11w is mandatory with SAE-only, optional in transition mode
        // (WPA2 stations may lack it).
        Security::Wpa3 => ("SAE", 2),
        Security::Wpa2Wpa3 => ("WPA-PSK SAE", 1),
    };
    let _ = writeln!(w, "wpa_key_mgmt={key_mgmt}");
    if mfp > 0 {
        let _ = writeln!(w, "ieee80211w={mfp}");
    }
    // SAE also takes its password from wpa_passphrase.
    let _ = writeln!(w, "wpa_passphrase={}", b.passphrase.expose());
    if b.hidden {
        let _ = writeln!(w, "ignore_broadcast_ssid=1");
    }
    if b.client_isolation {
        let _ = writeln!(w, "ap_isolate=1");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
