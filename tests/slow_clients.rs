//! `shorts serve` against clients that hold it up, over real TCP on
//! loopback: headers sent a byte at a time (slowloris), a body declared
//! and never sent, more connections than it may keep, and a SIGTERM while
//! a client holds a request half-sent. Each is bounded: the limits are set
//! to a second or two in `[server]`, and every wait has a deadline.

mod common;
#[path = "common/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use server::Server;

const NOW: &str = "2026-06-08T08:00:00Z";

/// The built fixture site with these `[server]` settings.
fn site_with(server: &str) -> tempfile::TempDir {
    let site = common::serve_site(common::unused_port());
    common::edit_config(
        site.path(),
        "[site]",
        &format!("[server]\n{server}\n\n[site]"),
    );
    site
}

fn connect(server: &Server) -> TcpStream {
    let address = server.base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream
}

/// Whether the server has closed `stream` (a read sees the end, or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return true,
            // An answer (a 408) before the close is fine: read on.
            Ok(_) => continue,
        }
    }
}

/// A normal client's GET: its status line, and how long it took.
fn normal_get(server: &Server, path: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = connect(server);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    (
        text.lines().next().unwrap_or("").to_string(),
        started.elapsed(),
    )
}

#[test]
fn headers_sent_slowly_are_cut_off_while_others_are_served() {
    let site = site_with("header_timeout_secs = 1");
    let server = Server::start(site.path(), NOW);
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(&server);
            write!(stream, "GET /shorts/ HTTP/1.1\r\nHost: x\r\n").unwrap();
            stream
        })
        .collect();
    // A header line now and then, never the blank line that ends them.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        for stream in &mut slow {
            let _ = write!(stream, "X-Slow: 1\r\n");
        }
    }
    let (status, took) = normal_get(&server, "/rss.xml");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let started = Instant::now();
    for stream in &mut slow {
        assert!(closed(stream), "a slow client's connection was left open");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_declared_and_never_sent_is_answered_408_and_closed() {
    let site = site_with("request_timeout_secs = 1");
    let server = Server::start(site.path(), NOW);
    let mut stream = connect(&server);
    let started = Instant::now();
    write!(
        stream,
        "POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a%40example.com"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connections_past_the_cap_are_closed_and_the_site_comes_back() {
    let site = site_with("max_connections = 4\nheader_timeout_secs = 2");
    let server = Server::start(site.path(), NOW);
    let idle: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = connect(&server);
    let started = Instant::now();
    assert!(closed(&mut over));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the fifth was not refused at once"
    );
    // Once the idle ones have timed out, a reader gets through again.
    std::thread::sleep(Duration::from_millis(2500));
    let (status, _) = normal_get(&server, "/shorts/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    drop(idle);
}

#[test]
fn sigterm_with_a_client_holding_a_request_exits_within_the_deadline() {
    let site =
        site_with("shutdown_timeout_secs = 1\nheader_timeout_secs = 60\nrequest_timeout_secs = 60");
    let mut server = Server::start(site.path(), NOW);
    // Headers complete, body promised and never sent: a request in progress.
    let mut holding = connect(&server);
    write!(
        holding,
        "POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail="
    )
    .unwrap();
    // And one still sending its headers.
    let mut half = connect(&server);
    write!(half, "GET /shorts/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        started.elapsed()
    );
}
