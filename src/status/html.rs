//! The status page: one server-rendered HTML document, no external assets,
//! no JavaScript (a meta refresh keeps it current), readable on a phone.

use super::{age, bytes, PeerState, Status};
use std::fmt::Write;

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECS: u32 = 10;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60em;padding:.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.4em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{text-align:left;padding:.2em .4em;border-bottom:1px solid #eee;vertical-align:top}\
code{font-size:.85em;word-break:break-all}.up{color:#070}.stale{color:#a60}.down{color:#b00}\
pre{font-size:.8em;overflow-x:auto;background:#f6f6f6;padding:.5em}\
@media(max-width:40em){table,tbody,tr,td{display:block}tr.h{display:none}tr{border-bottom:1px solid #ccc;padding:.3em 0}\
td{border:0;padding:.1em .2em}pre{white-space:pre-wrap;word-break:break-all}td::before{content:attr(data-l)\": \";color:#666}}";

fn dash(v: Option<&str>) -> String {
    v.map(escape).unwrap_or_else(|| "-".to_string())
}

/// A table; on a narrow screen (a phone) each row becomes a block of
/// "heading: value" lines, from each cell's `data-l`.
fn table(out: &mut String, head: &[&str], rows: Vec<Vec<String>>) {
    out.push_str("<table><tr class=\"h\">");
    for h in head {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for (cell, h) in r.iter().zip(head) {
            let _ = write!(out, "<td data-l=\"{h}\">{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The page for `s`; `now` (Unix seconds) turns lease expiry into time left.
/// One function per section, in page order.
pub fn render(s: &Status, now: u64) -> String {
    let mut o = String::with_capacity(8192);
    head(&mut o, s);
    wan(&mut o, s);
    lans(&mut o, s);
    portals(&mut o, s);
    if !s.wifi.is_empty() {
        wifi(&mut o, s);
    }
    if !s.dns.is_empty() {
        dns(&mut o, s);
    }
    leases(&mut o, s, now);
    log_and_footer(&mut o, s);
    o
}

/// The document head, the title and the system line.
fn head(o: &mut String, s: &Status) {
    let name = s.system.hostname.as_deref().unwrap_or("portal");
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>{} - Portal</title><style>{STYLE}</style></head><body>",
        escape(name)
    );
    let _ = write!(o, "<h1>{}</h1>", escape(name));
    let sys = &s.system;
    let _ =
        write!(
        o,
        "<p id=\"system\">Portal {}{} · up {} · load {:.2} {:.2} {:.2} · memory {} free of {}</p>",
        escape(&sys.version),
        if sys.portal_is_init { " (firmware, PID 1)" } else { "" },
        age(sys.uptime_secs),
        sys.load[0],
        sys.load[1],
        sys.load[2],
        bytes(sys.mem_available_kib * 1024),
        bytes(sys.mem_total_kib * 1024)
    );
}

fn wan(o: &mut String, s: &Status) {
    o.push_str("<h2>WAN</h2>");
    let w = &s.wan;
    table(
        o,
        &["interface", "mode", "address", "gateway", "lease", "link"],
        vec![vec![
            escape(&w.interface),
            escape(&w.mode),
            dash(w.address.as_deref()),
            dash(w.gateway.as_deref()),
            w.lease_expires_in
                .map(|t| format!("{} left", age(t)))
                .unwrap_or_else(|| "-".into()),
            if w.link_up { "up" } else { "down" }.to_string(),
        ]],
    );
}

fn lans(o: &mut String, s: &Status) {
    o.push_str("<h2>LANs</h2>");
    let rows = s
        .lans
        .iter()
        .map(|l| {
            vec![
                escape(&l.name),
                escape(&l.interface),
                escape(&l.address),
                escape(&l.exit),
                match l.kill_switch_armed {
                    None if l.exit == crate::core::model::DIRECT => "-".to_string(),
                    None => "<span class=\"down\">off</span>".to_string(),
                    Some(true) => "<span class=\"up\">armed</span>".to_string(),
                    Some(false) => "<span class=\"down\">NOT armed</span>".to_string(),
                },
            ]
        })
        .collect();
    table(
        o,
        &["LAN", "interface", "address", "exits via", "kill switch"],
        rows,
    );
}

/// One row per peer of every portal.
fn portals(o: &mut String, s: &Status) {
    o.push_str("<h2>Portals</h2>");
    let mut rows = Vec::new();
    for p in &s.portals {
        for peer in &p.peers {
            let class = match peer.state {
                PeerState::Up => "up",
                PeerState::Stale => "stale",
                PeerState::Down => "down",
            };
            rows.push(vec![
                format!(
                    "{} (<code>{}</code>, {})",
                    escape(&p.name),
                    escape(&p.interface),
                    dash(p.backend.as_deref())
                ),
                format!(
                    "{}<br><code>{}</code>",
                    dash(peer.name.as_deref()),
                    escape(&peer.public_key)
                ),
                dash(peer.endpoint.as_deref()),
                peer.handshake_age_secs
                    .map(|a| format!("{} ago", age(a)))
                    .unwrap_or_else(|| "never".into()),
                format!("{} / {}", bytes(peer.rx_bytes), bytes(peer.tx_bytes)),
                format!("<span class=\"{class}\">{class}</span>"),
                escape(&p.lans.join(", ")),
                exit_probe(p.probe.as_ref()),
            ]);
        }
    }
    table(
        o,
        &[
            "portal",
            "peer",
            "endpoint",
            "handshake",
            "rx / tx",
            "state",
            "LANs",
            "exits as",
        ],
        rows,
    );
}

/// The "exits as" cell: the address the exit probe saw, or why it failed.
fn exit_probe(probe: Option<&super::ProbeResult>) -> String {
    match probe {
        None => "-".to_string(),
        Some(r) => match (&r.exit_address, &r.error) {
            (Some(a), _) => format!("{} <small>({} ago)</small>", escape(a), age(r.age_secs)),
            (None, Some(e)) => format!(
                "<span class=\"down\">probe failed</span> <small>{}</small>",
                escape(e)
            ),
            (None, None) => "-".to_string(),
        },
    }
}

/// The SSIDs, then their stations.
fn wifi(o: &mut String, s: &Status) {
    o.push_str("<h2>WiFi</h2>");
    let rows = s
        .wifi
        .iter()
        .map(|b| {
            vec![
                escape(&b.ssid),
                escape(&b.lan),
                format!(
                    "{} ({} GHz, channel {})",
                    escape(&b.interface),
                    b.band,
                    b.channel
                ),
                escape(&b.security),
                hostapd_state(b),
                b.stations.len().to_string(),
            ]
        })
        .collect();
    table(
        o,
        &[
            "SSID",
            "LAN",
            "interface",
            "security",
            "hostapd",
            "stations",
        ],
        rows,
    );
    let mut rows = Vec::new();
    for b in &s.wifi {
        for st in &b.stations {
            rows.push(vec![
                escape(&b.ssid),
                format!("<code>{}</code>", escape(&st.mac)),
                st.connected_secs.map(age).unwrap_or_else(|| "-".into()),
                st.signal_dbm
                    .map(|d| format!("{d} dBm"))
                    .unwrap_or_else(|| "-".into()),
                format!(
                    "{} / {}",
                    bytes(st.rx_bytes.unwrap_or(0)),
                    bytes(st.tx_bytes.unwrap_or(0))
                ),
                if st.authorized { "yes" } else { "no" }.to_string(),
            ]);
        }
    }
    table(
        o,
        &[
            "SSID",
            "station",
            "connected",
            "signal",
            "rx / tx",
            "authorized",
        ],
        rows,
    );
}

/// The "hostapd" cell: running (with hostapd's own state and frequency)
/// or what went wrong.
fn hostapd_state(b: &crate::wifi::hostapd::BssStatus) -> String {
    if b.state != "running" {
        return format!("<span class=\"down\">{}</span>", escape(&b.state));
    }
    let detail = match (&b.hostapd_state, b.freq_mhz) {
        (Some(st), Some(f)) => format!(" <small>({}, {f} MHz)</small>", escape(st)),
        (Some(st), None) => format!(" <small>({})</small>", escape(st)),
        _ => String::new(),
    };
    format!("<span class=\"up\">running</span>{detail}")
}

fn dns(o: &mut String, s: &Status) {
    o.push_str("<h2 id=\"dns\">DNS</h2>");
    let rows = s
        .dns
        .iter()
        .map(|d| {
            let looked = d.cache_hits + d.cache_misses;
            vec![
                escape(&d.lan),
                d.queries.to_string(),
                d.answered.to_string(),
                match (d.cache_size, looked) {
                    (0, _) => "off".to_string(),
                    (_, 0) => "0".to_string(),
                    (_, n) => format!("{} ({}%)", d.cache_hits, d.cache_hits * 100 / n),
                },
                format!("{} / {}", d.cache_entries, d.cache_size),
                d.servfail.to_string(),
                (d.refused + d.formerr).to_string(),
            ]
        })
        .collect();
    table(
        o,
        &[
            "LAN",
            "queries",
            "upstream answers",
            "cache hits",
            "cached / size",
            "SERVFAIL",
            "refused / FORMERR",
        ],
        rows,
    );
}

fn leases(o: &mut String, s: &Status, now: u64) {
    o.push_str("<h2>DHCP leases</h2>");
    let mut rows = Vec::new();
    for (lan, list) in &s.leases {
        for l in list {
            rows.push(vec![
                escape(lan),
                dash(l.hostname.as_deref()),
                format!("<code>{}</code>", escape(&l.mac)),
                l.address.to_string(),
                format!("{:?}", l.state).to_lowercase(),
                if l.expires > now {
                    format!("{} left", age(l.expires - now))
                } else {
                    "expired".into()
                },
            ]);
        }
    }
    table(
        o,
        &["LAN", "host name", "MAC", "address", "state", "expiry"],
        rows,
    );
}

fn log_and_footer(o: &mut String, s: &Status) {
    o.push_str("<h2>Recent log</h2><pre>");
    for line in &s.log {
        o.push_str(&escape(line));
        o.push('\n');
    }
    o.push_str("</pre>");
    let c = &s.counters;
    let _ = write!(
        o,
        "<p>{} passes, {} changes applied, {} apply errors, {} restarts · \
         <a href=\"/api/status\">JSON</a> · <a href=\"/metrics\">metrics</a></p></body></html>",
        c.passes, c.changes_applied, c.apply_errors, c.restarts
    );
}
