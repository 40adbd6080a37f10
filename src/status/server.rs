//! The status page's HTTP server (tiny_http): one listener per LAN that
//! serves it, bound to the LAN's address AND its interface
//! (SO_BINDTODEVICE), so that neither the WAN nor a tunnel can reach it
//! even if the firewall were gone. Read-only: GET and HEAD of `/`,
//! `/api/status` and `/metrics`.

use super::collect::{Collector, Shared};
use super::{html, metrics, Status};
use crate::core::model::Model;
use crate::worker::{lock, Worker, WorkerSet};
use nix::sys::socket::{self, setsockopt, sockopt, Backlog, Shutdown, SockType, SockaddrIn};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response};

/// Requests within this long share one reading of the kernel: a burst of
/// requests costs one collection, and the page is never older than this.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The collector and its latest result, shared by every listener.
pub struct Cache {
    collector: Collector,
    slot: Mutex<Option<(Instant, Arc<Status>)>>,
    /// The run dir, where `portal peer add --page` leaves its offers
    /// (peer_page), and when they were last swept.
    peer_pages: Mutex<(Option<std::path::PathBuf>, Option<Instant>)>,
}

impl Cache {
    pub fn status(&self) -> Arc<Status> {
        // Held while collecting: concurrent requests wait for one reading
        // instead of each reading the kernel.
        let mut slot = lock(&self.slot);
        if let Some((at, s)) = slot.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return s.clone();
            }
        }
        let s = Arc::new(self.collector.collect(crate::clock::unix_ms() / 1000));
        *slot = Some((Instant::now(), s.clone()));
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Spec {
    lan: String,
    interface: String,
    /// See `sock::ifindex`: a new index means a new listener.
    ifindex: Option<u32>,
    address: Ipv4Addr,
    port: u16,
    /// Host names the page answers to besides IP literals.
    hostname: Option<String>,
}

/// The running listeners, kept equal to the model by `sync`.
pub struct Pages {
    cache: Arc<Cache>,
    running: WorkerSet<Spec>,
}

impl Pages {
    pub fn new(shared: Shared, state_dir: &Path) -> Pages {
        Pages {
            cache: Arc::new(Cache {
                collector: Collector {
                    shared,
                    state_dir: state_dir.to_path_buf(),
                },
                slot: Mutex::new(None),
                peer_pages: Mutex::new((None, None)),
            }),
            running: WorkerSet::default(),
        }
    }

    pub fn sync(&mut self, m: &Model) {
        let wanted: BTreeMap<String, Spec> = m
            .status_page
            .iter()
            .flat_map(|page| {
                m.lans
                    .iter()
                    .filter(|l| page.lans.contains(&l.name))
                    .filter_map(|l| {
                        let ifindex = crate::sock::ifindex(&l.interface);
                        // An SSID interface hostapd has not made yet, or
                        // not given its address yet: the pass that
                        // follows starts the listener.
                        let awaited = m.made_by_hostapd(&l.interface);
                        let ready = match l.address.addr {
                            IpAddr::V4(a) => crate::sock::has_address(&l.interface, a),
                            IpAddr::V6(_) => true,
                        };
                        (!awaited || (ifindex.is_some() && ready)).then_some((l, ifindex))
                    })
                    .map(|(l, ifindex)| Spec {
                        lan: l.name.clone(),
                        interface: l.interface.clone(),
                        ifindex,
                        address: match l.address.addr {
                            IpAddr::V4(a) => a,
                            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                        },
                        port: page.port,
                        hostname: m.hostname.clone(),
                    })
            })
            .map(|s| (s.lan.clone(), s))
            .collect();
        self.running.sync(wanted, |spec| {
            let (s, cache) = (spec.clone(), self.cache.clone());
            let label = format!("status page on {}", s.lan);
            Worker::spawn(label, move |stop| serve(&s, &cache, stop))
        });
    }

    /// Serves `portal peer add --page` offers left in `run_dir`.
    pub fn offer_peers(&self, run_dir: &Path) {
        lock(&self.cache.peer_pages).0 = Some(run_dir.to_path_buf());
    }

    pub fn tell_all_to_stop(&self) {
        self.running.tell_all_to_stop();
    }

    pub fn stop_all(&mut self) {
        self.running.stop_all();
    }
}

/// A listening TCP socket on `address:port` that sees only `interface`.
fn listen(s: &Spec) -> Result<OwnedFd, String> {
    let at = format!("{}:{} on {}", s.address, s.port, s.interface);
    let err = |what: &str, e: nix::Error| format!("{at}: {what}: {e}");
    let fd = crate::sock::on_device(SockType::Stream, &s.interface)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| err("SO_REUSEADDR", e))?;
    socket::bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(s.address, s.port)),
    )
    .map_err(|e| err("bind", e))?;
    socket::listen(&fd, Backlog::new(128).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| err("listen", e))?;
    Ok(fd)
}

fn serve(s: &Spec, cache: &Cache, stop: &AtomicBool) -> Result<(), String> {
    let fd = listen(s)?;
    // tiny_http's accept thread blocks in accept(): keep a handle to shut
    // the socket down, which ends that accept() (tiny_http's own wake-up,
    // a connection to itself, is not to be relied on; see below).
    let kick = fd.try_clone().map_err(|e| e.to_string())?;
    let server = tiny_http::Server::from_listener(TcpListener::from(fd), None)
        .map_err(|e| format!("status page on {}: {e}", s.lan))?;
    crate::log::info(&format!(
        "status page: http://{}:{}/ on {} (LAN {})",
        s.address, s.port, s.interface, s.lan
    ));
    // Two threads take requests: one slow client does not hold up the rest.
    let result = std::thread::scope(|scope| {
        let helper = scope.spawn(|| take_requests(&server, s, cache, stop));
        let mine = take_requests(&server, s, cache, stop);
        stop.store(true, Ordering::Relaxed);
        let theirs = helper.join().unwrap_or(Ok(()));
        mine.and(theirs)
    });
    // Shut the listening socket down: tiny_http's accept thread wakes with
    // an error and ends. The Server itself is dropped on a thread of its
    // own: its Drop connects to its own address to wake that thread, and
    // under QEMU that connect was seen to hang for longer than PID 1 waits
    // for the agent to stop (not seen in namespaces; cause not found).
    let _ = socket::shutdown(kick.as_raw_fd(), Shutdown::Both);
    std::thread::spawn(move || drop(server));
    result
}

fn take_requests(
    server: &tiny_http::Server,
    s: &Spec,
    cache: &Cache,
    stop: &AtomicBool,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(req)) => answer(req, s, cache),
            Ok(None) => sweep_peer_pages(cache),
            Err(e) => return Err(format!("status page on {}: {e}", s.lan)),
        }
    }
    Ok(())
}

/// What a request gets: status code, content type, body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn text(code: u16, body: &str) -> Reply {
    Reply {
        code,
        content_type: "text/plain; charset=utf-8",
        body: body.as_bytes().to_vec(),
    }
}

/// A Host header the page answers to: none, an IP literal (with or without
/// port), or the router's host name. Anything else is most likely a DNS
/// rebinding attempt by a web page the LAN client visited.
pub fn host_allowed(host: Option<&str>, hostname: Option<&str>) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<IpAddr>().is_ok())
        }
        None => host.split(':').next().unwrap_or_default(),
    };
    if name.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let first = name
        .trim_end_matches('.')
        .split('.')
        .next()
        .unwrap_or_default();
    hostname.is_some_and(|h| first.eq_ignore_ascii_case(h.split('.').next().unwrap_or(h)))
}

/// Pure routing: method, path and Host -> reply. `status` is called only
/// for the paths that need it.
pub fn route(
    method: &Method,
    url: &str,
    host: Option<&str>,
    hostname: Option<&str>,
    status: impl FnOnce() -> Arc<Status>,
) -> Reply {
    if !host_allowed(host, hostname) {
        return text(403, "unknown host name: use the router's address\n");
    }
    if !matches!(method, Method::Get | Method::Head) {
        return text(405, "read-only: GET or HEAD\n");
    }
    let path = url.split('?').next().unwrap_or_default();
    match path {
        "/" | "/index.html" => Reply {
            code: 200,
            content_type: "text/html; charset=utf-8",
            body: html::render(&status(), crate::clock::unix_ms() / 1000).into_bytes(),
        },
        "/api/status" => Reply {
            code: 200,
            content_type: "application/json",
            body: serde_json::to_vec(&*status()).unwrap_or_default(),
        },
        "/metrics" => Reply {
            code: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics::render(&status()).into_bytes(),
        },
        _ => text(404, "not found: try /, /api/status or /metrics\n"),
    }
}

/// Deletes expired peer offers, at most every 10 s.
fn sweep_peer_pages(cache: &Cache) {
    let mut p = lock(&cache.peer_pages);
    if p.1.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
        return;
    }
    p.1 = Some(Instant::now());
    if let Some(dir) = &p.0 {
        super::peer_page::sweep(dir, std::time::SystemTime::now());
    }
}

/// GET /peer/NAME: an offer of `portal peer add --page`, shown once.
fn peer_reply(req: &Request, host: Option<&str>, s: &Spec, cache: &Cache) -> Option<Reply> {
    let name = req.url().split('?').next()?.strip_prefix("/peer/")?;
    let dir = lock(&cache.peer_pages).0.clone()?;
    if *req.method() != Method::Get || !host_allowed(host, s.hostname.as_deref()) {
        return None;
    }
    Some(
        match super::peer_page::take(&dir, name, std::time::SystemTime::now()) {
            Some(conf) => Reply {
                code: 200,
                content_type: "text/html; charset=utf-8",
                body: super::peer_page::html(name, &conf).into_bytes(),
            },
            None => text(
                404,
                "no device config offered under this name (an offer is shown once, for 15 minutes)\n",
            ),
        },
    )
}

fn answer(req: Request, s: &Spec, cache: &Cache) {
    let host = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.as_str().to_string());
    let reply = peer_reply(&req, host.as_deref(), s, cache).unwrap_or_else(|| {
        route(
            req.method(),
            req.url(),
            host.as_deref(),
            s.hostname.as_deref(),
            || cache.status(),
        )
    });
    let headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
        ),
    ];
    let mut response = Response::from_data(reply.body).with_status_code(reply.code);
    for (k, v) in headers {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    if reply.code == 405 {
        if let Ok(h) = Header::from_bytes(&b"Allow"[..], &b"GET, HEAD"[..]) {
            response.add_header(h);
        }
    }
    // A client that went away is not an error worth a log line.
    let _ = req.respond(response);
}

#[cfg(test)]
mod tests {
    use super::{host_allowed, route};
    use crate::status::Status;
    use std::sync::Arc;
    use tiny_http::Method;

    #[test]
    fn host_names() {
        assert!(host_allowed(None, None));
        assert!(host_allowed(Some("192.168.10.1"), None));
        assert!(host_allowed(Some("192.168.10.1:8080"), None));
        assert!(host_allowed(Some("[fd00::1]:80"), None));
        assert!(host_allowed(Some("site"), Some("site")));
        assert!(host_allowed(Some("SITE.lan:80"), Some("site")));
        assert!(!host_allowed(Some("evil.example"), Some("site")));
        assert!(!host_allowed(Some("site.evil.example"), None));
        assert!(!host_allowed(Some("[not-an-ip]"), None));
    }

    #[test]
    fn routes() {
        let s = || Arc::new(Status::default());
        let get = |url: &str| route(&Method::Get, url, Some("192.168.10.1"), None, s);
        assert_eq!(get("/").code, 200);
        assert!(get("/").content_type.starts_with("text/html"));
        let json = get("/api/status?pretty");
        assert_eq!(json.code, 200);
        let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        assert!(v.get("portals").is_some());
        assert!(String::from_utf8(get("/metrics").body)
            .unwrap()
            .contains("portal_passes_total 0"));
        assert_eq!(get("/etc/passwd").code, 404);
        assert_eq!(route(&Method::Post, "/", None, None, s).code, 405);
        assert_eq!(
            route(&Method::Get, "/", Some("evil.example"), None, s).code,
            403
        );
    }
}
