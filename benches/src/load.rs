//! A bounded loopback HTTP/1.1 load generator (the `cfa-load` binary and the
//! `cfa serve` rows of `cfa-gates`): `connections` keep-alive connections over
//! [`std::net::TcpStream`], spread over `threads` threads, each connection with one
//! request in flight, for a fixed duration. A thread sends one request on each of its
//! connections, then reads each response in turn, so a few threads keep many
//! connections busy without an event loop (docs/development.md#cargo-xtask-bench).
//! Latency is from a request's write to the end of its response, in an HDR histogram.

use crate::measure::Stats;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The server's answer is not HTTP/1.1 as expected.
    #[error("bad HTTP response: {0}")]
    Http(String),
    /// The histogram could not be created.
    #[error("cannot create the latency histogram: {0}")]
    Histogram(String),
}

/// One complete response at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Bytes of the buffer the response takes (head and body).
    pub len: usize,
    /// False when the server closes the connection after it (`Connection: close`,
    /// or HTTP/1.0 without `keep-alive`).
    pub keep_alive: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(msg: impl Into<String>) -> LoadError {
    LoadError::Http(msg.into())
}

/// Parses the response at the start of `buf`: `Ok(None)` while it is incomplete.
/// Bodies are framed by `Content-Length` or `Transfer-Encoding: chunked` (trailers
/// allowed); a response with neither has no body (`cfa serve` always frames its
/// bodies, and reading to the end of the connection cannot be told from a hang).
pub fn parse_response(buf: &[u8]) -> Result<Option<Response>, LoadError> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())
        .map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("status line {status_line:?}")))?;
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        other => return Err(bad(format!("version {other:?}"))),
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = !http10;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("header line {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| bad(format!("Content-Length {value:?}")))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let body_start = head_end + 4;
    let body_len = if chunked {
        match chunked_len(buf.get(body_start..).unwrap_or_default())? {
            Some(n) => n,
            None => return Ok(None),
        }
    } else {
        content_length.unwrap_or(0)
    };
    let len = body_start + body_len;
    Ok((buf.len() >= len).then_some(Response {
        status,
        len,
        keep_alive,
    }))
}

/// The length of a complete chunked body at the start of `buf` (chunks, the last
/// `0` chunk, trailers, the final CRLF), or `None` while it is incomplete.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, LoadError> {
    let mut at = 0;
    loop {
        let Some(eol) = find(buf.get(at..).unwrap_or_default(), b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(buf.get(at..at + eol).unwrap_or_default())
            .map_err(|_| bad("chunk size is not UTF-8"))?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| bad(format!("chunk size {size_hex:?}")))?;
        at += eol + 2;
        if size == 0 {
            // Trailers, each ending in CRLF, then an empty line.
            loop {
                let Some(eol) = find(buf.get(at..).unwrap_or_default(), b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        let end = at + size;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
            return Err(bad("chunk not followed by CRLF"));
        }
        at = end + 2;
    }
}

/// A POST of `body` (JSON) to `path`, keep-alive.
pub fn post_request(host: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How a load run is made.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The server.
    pub addr: SocketAddr,
    /// Request path (e.g. `/v1/decisions`).
    pub path: String,
    /// JSON body posted on every request.
    pub body: String,
    /// Keep-alive connections, each with one request in flight.
    pub connections: usize,
    /// Threads the connections are spread over.
    pub threads: usize,
    /// How long requests are sent (after a short warm-up).
    pub duration: Duration,
    /// Unmeasured warm-up before `duration`.
    pub warmup: Duration,
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Responses received in the measured window.
    pub requests: u64,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Connections the server closed and that were opened again.
    pub reconnects: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency percentiles (one request per sample).
    pub latency: Stats,
}

impl LoadReport {
    /// Responses per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    sent: Instant,
}

fn connect(addr: SocketAddr) -> Result<TcpStream, LoadError> {
    let s = TcpStream::connect(addr).map_err(|e| LoadError::Io(format!("connect {addr}: {e}")))?;
    s.set_nodelay(true)
        .map_err(|e| LoadError::Io(format!("TCP_NODELAY: {e}")))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| LoadError::Io(format!("read timeout: {e}")))?;
    Ok(s)
}

/// Reads one complete response from `c`; `Ok((status, keep_alive))`.
fn read_response(c: &mut Conn) -> Result<(u16, bool), LoadError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(r) = parse_response(&c.buf)? {
            c.buf.drain(..r.len);
            return Ok((r.status, r.keep_alive));
        }
        let n = c
            .stream
            .read(&mut chunk)
            .map_err(|e| LoadError::Io(format!("read: {e}")))?;
        if n == 0 {
            return Err(LoadError::Io(
                "the server closed the connection mid-response".into(),
            ));
        }
        c.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

struct ThreadResult {
    hist: Histogram<u64>,
    non_2xx: u64,
    reconnects: u64,
}

fn drive(
    opts: &LoadOptions,
    request: &[u8],
    conns: usize,
    measure_from: Instant,
    end: Instant,
) -> Result<ThreadResult, LoadError> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| LoadError::Histogram(e.to_string()))?;
    let mut list = Vec::with_capacity(conns);
    for _ in 0..conns {
        list.push(Conn {
            stream: connect(opts.addr)?,
            buf: Vec::with_capacity(4096),
            sent: Instant::now(),
        });
    }
    let (mut non_2xx, mut reconnects) = (0u64, 0u64);
    while Instant::now() < end {
        for c in &mut list {
            c.sent = Instant::now();
            c.stream
                .write_all(request)
                .map_err(|e| LoadError::Io(format!("write: {e}")))?;
        }
        for c in &mut list {
            let (status, keep_alive) = read_response(c)?;
            let done = Instant::now();
            if c.sent >= measure_from && done <= end {
                let ns = u64::try_from((done - c.sent).as_nanos()).unwrap_or(u64::MAX);
                hist.saturating_record(ns.max(1));
                if !(200..300).contains(&status) {
                    non_2xx += 1;
                }
            }
            if !keep_alive {
                c.stream = connect(opts.addr)?;
                c.buf.clear();
                reconnects += 1;
            }
        }
    }
    Ok(ThreadResult {
        hist,
        non_2xx,
        reconnects,
    })
}

/// When a load run sends and measures: requests start at `start`, are measured from
/// `measure_from` (after the warm-up) and until `end`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The first requests are sent.
    pub start: Instant,
    /// Responses to requests sent from here on are measured.
    pub measure_from: Instant,
    /// Requests stop; responses after it are not counted.
    pub end: Instant,
}

impl Window {
    /// The window of a run that starts at `start` with `opts`' warm-up and duration.
    pub fn of(opts: &LoadOptions, start: Instant) -> Self {
        let measure_from = start + opts.warmup;
        Self {
            start,
            measure_from,
            end: measure_from + opts.duration,
        }
    }
}

/// Runs the load: every thread connects, warms up for `warmup`, then counts the
/// responses that complete within `duration`.
pub fn run(opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    let start = Instant::now() + Duration::from_millis(50);
    run_together(std::slice::from_ref(opts), Window::of(opts, start))
}

/// Runs several loads at once (e.g. one per server of a scale-out) in one `window`,
/// each with its own connections and threads, and reports them as one: responses of
/// all in the window, one latency histogram. `window` is what [`Window::of`] gives
/// for the first load (its warm-up and duration apply to all).
pub fn run_together(loads: &[LoadOptions], window: Window) -> Result<LoadReport, LoadError> {
    let requests: Vec<Vec<u8>> = loads
        .iter()
        .map(|o| post_request(&o.addr.to_string(), &o.path, &o.body))
        .collect();
    let results: Vec<Result<ThreadResult, LoadError>> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (opts, request) in loads.iter().zip(&requests) {
            let threads = opts.threads.clamp(1, opts.connections.max(1));
            let connections = opts.connections.max(1);
            for t in 0..threads {
                // Connections split as evenly as possible.
                let mine = connections / threads + usize::from(t < connections % threads);
                handles.push(
                    s.spawn(move || drive(opts, request, mine, window.measure_from, window.end)),
                );
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(LoadError::Io("a load thread panicked".into())))
            })
            .collect()
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| LoadError::Histogram(e.to_string()))?;
    let (mut non_2xx, mut reconnects) = (0, 0);
    for r in results {
        let r = r?;
        hist.add(&r.hist)
            .map_err(|e| LoadError::Histogram(e.to_string()))?;
        non_2xx += r.non_2xx;
        reconnects += r.reconnects;
    }
    let ns = |q: f64| hist.value_at_quantile(q) as f64;
    Ok(LoadReport {
        requests: hist.len(),
        non_2xx,
        reconnects,
        elapsed: window.end.saturating_duration_since(window.measure_from),
        latency: Stats {
            p50_ns: ns(0.50),
            p99_ns: ns(0.99),
            max_ns: hist.max() as f64,
            samples: hist.len(),
            batch: 1,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"a\":\"xyz\"}";

    #[test]
    fn content_length_response_is_complete_only_with_its_body() {
        for cut in 0..OK.len() {
            assert_eq!(parse_response(&OK[..cut]).unwrap(), None, "cut at {cut}");
        }
        let r = parse_response(OK).unwrap().unwrap();
        assert_eq!(
            r,
            Response {
                status: 200,
                len: OK.len(),
                keep_alive: true
            }
        );
        // Pipelined bytes after it are not part of it.
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        assert_eq!(parse_response(&two).unwrap().unwrap().len, OK.len());
    }

    #[test]
    fn chunked_response_with_extensions_and_trailers() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";
        for cut in 0..resp.len() {
            assert_eq!(parse_response(&resp[..cut]).unwrap(), None, "cut at {cut}");
        }
        let r = parse_response(resp).unwrap().unwrap();
        assert_eq!((r.status, r.len, r.keep_alive), (200, resp.len(), true));
        let plain = b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\nrest";
        let r = parse_response(plain).unwrap().unwrap();
        assert_eq!((r.status, r.len), (503, plain.len() - 4));
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXY")
                .is_err()
        );
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_response(close).unwrap().unwrap().keep_alive);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_response(old).unwrap().unwrap().keep_alive);
        let old_ka = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_response(old_ka).unwrap().unwrap().keep_alive);
        let none = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_response(none).unwrap().unwrap().len, none.len());
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert!(parse_response(b"SPDY/3 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
                .is_err()
        );
    }

    #[test]
    fn request_is_a_framed_post() {
        let r = post_request("127.0.0.1:9", "/v1/decisions", "{}");
        assert_eq!(
            r,
            b"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    /// A tiny keep-alive server answering every request, alternating Content-Length
    /// and chunked bodies, closing each connection after its 5th response.
    fn serve(listener: TcpListener, requests: std::sync::Arc<std::sync::atomic::AtomicU64>) {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let requests = requests.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut served = 0;
                loop {
                    // One request: head + Content-Length body.
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    served += 1;
                    requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let last = served == 5;
                    let conn = if last { "Connection: close\r\n" } else { "" };
                    let resp = if served % 2 == 0 {
                        format!(
                            "HTTP/1.1 200 OK\r\n{conn}Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                        )
                    } else {
                        format!("HTTP/1.1 200 OK\r\n{conn}Content-Length: 2\r\n\r\nok")
                    };
                    if s.write_all(resp.as_bytes()).is_err() || last {
                        return;
                    }
                }
            });
        }
    }

    #[test]
    fn load_run_counts_responses_across_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = served.clone();
        std::thread::spawn(move || serve(listener, counter));
        let report = run(&LoadOptions {
            addr,
            path: "/v1/decisions".into(),
            body: "{\"x\":1}".into(),
            connections: 3,
            threads: 2,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(20),
        })
        .unwrap();
        assert!(report.requests > 10, "{report:?}");
        assert!(report.reconnects > 0, "{report:?}");
        assert_eq!(report.non_2xx, 0);
        assert!(report.requests <= served.load(std::sync::atomic::Ordering::Relaxed));
        assert!(report.latency.p50_ns > 0.0 && report.latency.p99_ns >= report.latency.p50_ns);
        assert!(report.per_second() > 0.0);
    }
}
