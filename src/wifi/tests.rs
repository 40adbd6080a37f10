use super::*;
use crate::core::model::wifi::{Band, Bss, Radio, Security};

#[test]
fn station_reply() {
    let reply = "02:00:00:00:01:00\nflags=[AUTH][ASSOC][AUTHORIZED][WMM][HT]\naid=1\n\
                 rx_packets=12\ntx_packets=9\nrx_bytes=1532\ntx_bytes=2104\n\
                 connected_time=37\nsignal=-30\n";
    let st = parse_station(reply).unwrap();
    assert_eq!(st.mac, "02:00:00:00:01:00");
    assert_eq!(st.connected_secs, Some(37));
    assert_eq!(st.signal_dbm, Some(-30));
    assert_eq!((st.rx_bytes, st.tx_bytes), (Some(1532), Some(2104)));
    assert!(st.authorized);
    let half = parse_station("02:00:00:00:01:00\nflags=[AUTH][ASSOC]\n").unwrap();
    assert!(!half.authorized);
    assert_eq!(half.signal_dbm, None);
    // End of the list: an empty reply or FAIL.
    assert_eq!(parse_station(""), None);
    assert_eq!(parse_station("FAIL\n"), None);
}

#[test]
fn status_reply() {
    let reply = "state=ENABLED\nphy=phy0\nfreq=2437\nnum_sta_non_erp=0\nchannel=6\n\
                 bss[0]=wlan0\nbssid[0]=02:00:00:00:00:00\nssid[0]=Portal Air\nnum_sta[0]=1\n";
    assert_eq!(
        parse_status(reply),
        Some(ApStatus {
            state: "ENABLED".into(),
            freq_mhz: Some(2437)
        })
    );
    assert_eq!(parse_status("FAIL\n"), None);
}

#[test]
fn events() {
    assert_eq!(
        parse_event("<3>AP-STA-CONNECTED 02:00:00:00:01:00"),
        Some(Event::Connected("02:00:00:00:01:00".into()))
    );
    assert_eq!(
        parse_event("<3>AP-STA-DISCONNECTED 02:AB:00:00:01:00 p2p_dev_addr=00:00:00:00:00:00"),
        Some(Event::Disconnected("02:ab:00:00:01:00".into()))
    );
    assert_eq!(
        parse_event("<3>CTRL-EVENT-EAP-STARTED 02:00:00:00:01:00"),
        None
    );
    assert_eq!(parse_event("<3>AP-STA-CONNECTED not-a-mac"), None);
    assert_eq!(parse_event("<3>AP-ENABLED"), None);
}

fn bss(lan: &str, iface: &str, ssid: &str, security: Security) -> Bss {
    let passphrase = crate::core::model::wifi::Secret::new("correct horse battery");
    Bss {
        lan: lan.into(),
        interface: iface.into(),
        ssid: ssid.into(),
        passphrase,
        security,
        hidden: false,
        client_isolation: false,
    }
}

fn golden(name: &str, got: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(got, want, "{path} differs (UPDATE_GOLDEN=1 rewrites it)");
}

#[test]
fn hostapd_conf_2ghz_one_ssid() {
    let radio = Radio {
        interface: "wlan0".into(),
        country: None,
        band: Band::Ghz2,
        channel: 6,
        bsses: vec![bss("guest", "wlan0", "Portal Guest", Security::Wpa2)],
    };
    golden(
        "hostapd-2ghz.conf",
        &conf::render(&radio, std::path::Path::new("/run/portal/hostapd")),
    );
}

#[test]
fn hostapd_conf_5ghz_dfs_two_ssids() {
    let mut second = bss("paris", "wlan0-1", "Café Paris ☕", Security::Wpa2Wpa3);
    second.hidden = true;
    second.client_isolation = true;
    let radio = Radio {
        interface: "wlan0".into(),
        country: Some("FR".into()),
        band: Band::Ghz5,
        channel: 100,
        bsses: vec![bss("home", "wlan0", "Home", Security::Wpa3), second],
    };
    golden(
        "hostapd-5ghz-dfs-2ssid.conf",
        &conf::render(&radio, std::path::Path::new("/run/portal/hostapd")),
    );
}
