//! A fault-injecting HTTP proxy in front of moto. It forwards every request,
//! except those matching a rule, which get an AWS-shaped error in the
//! service's own protocol (awsQuery XML for STS/RDS/IAM, EC2 XML, restJson1
//! for EKS), added latency, or a truncated body. moto produces none of these
//! by itself (no throttling, no AccessDenied without auth mode, no timeouts).
//!
//! Requests are attributed to an account by their access key: the proxy learns
//! which key belongs to which account from the AssumeRole answers it relays.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 400 with this throttling code.
    Throttle(&'static str),
    AccessDenied,
    /// HTTP status with a generic server error.
    Status(u16),
    /// Sleep this long, then forward.
    Delay(Duration),
    /// A 200 answer whose body is cut short.
    Truncated,
}

#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub service: Option<&'static str>,
    pub operation: Option<&'static str>,
    pub account: Option<&'static str>,
    /// Substring of the request body (e.g. a RoleArn).
    pub body_contains: Option<String>,
    /// Only the first N matching requests fail; `None` = all of them.
    pub times: Option<usize>,
    pub fault: Option<Fault>,
}

pub struct RuleState {
    pub rule: Rule,
    pub hits: AtomicUsize,
    /// Matching requests being answered now, and the most at once.
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

pub struct Proxy {
    pub port: u16,
    pub rules: Arc<Vec<RuleState>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, rules: Vec<Rule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rules: Arc<Vec<RuleState>> = Arc::new(
            rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    hits: AtomicUsize::new(0),
                    in_flight: AtomicUsize::new(0),
                    max_in_flight: AtomicUsize::new(0),
                })
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let keys: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let (r, s) = (rules.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, k) = (r.clone(), keys.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &r, &k);
                });
            }
        });
        Proxy { port, rules, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests that matched rule `i` (failed or, past `times`, forwarded).
    pub fn hits(&self, i: usize) -> usize {
        self.rules[i].hits.load(Ordering::SeqCst)
    }

    /// The most requests matching rule `i` that were in flight at once.
    pub fn max_in_flight(&self, i: usize) -> usize {
        self.rules[i].max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { head, body }))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(
    conn: TcpStream,
    upstream: u16,
    rules: &[RuleState],
    keys: &Mutex<HashMap<String, String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    while let Some(req) = read_request(&mut reader)? {
        let auth = header(&req.head, "authorization")
            .unwrap_or_default()
            .to_string();
        // Credential=AKID/date/region/service/aws4_request
        let scope: Vec<&str> = auth
            .split("Credential=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(|s| s.split('/').collect())
            .unwrap_or_default();
        let key = scope.first().copied().unwrap_or_default().to_string();
        let service = scope.get(3).copied().unwrap_or_default().to_string();
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let operation = operation(&service, &req.head, &body);
        let account = keys.lock().unwrap().get(&key).cloned();

        let mut fault = None;
        let mut matched: Option<&RuleState> = None;
        for st in rules {
            let r = &st.rule;
            let matches = r.service.is_none_or(|s| s == service)
                && r.operation.is_none_or(|o| o == operation)
                && r.account.is_none_or(|a| Some(a) == account.as_deref())
                && r.body_contains
                    .as_ref()
                    .is_none_or(|b| body.contains(b.as_str()));
            if matches {
                matched = Some(st);
                let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                st.max_in_flight.fetch_max(now, Ordering::SeqCst);
                let n = st.hits.fetch_add(1, Ordering::SeqCst);
                if r.times.is_none_or(|t| n < t) {
                    fault = r.fault.clone();
                }
                break;
            }
        }
        // A request stops counting as in flight once the proxy has its
        // answer, before the answer is written: the client can send its
        // next request as soon as it reads it, and counting both at once
        // would measure this proxy, not the client's concurrency.
        let release = || {
            if let Some(st) = matched {
                st.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let answered = match fault {
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                release();
                forward(&req, upstream, &mut out, &service, &operation, keys)
            }
            Some(Fault::Truncated) => {
                let answer = upstream_call(&req, upstream);
                release();
                answer.and_then(|(status, hdrs, body)| {
                    let cut = &body[..body.len() / 2];
                    write_response(&mut out, status, &content_type(&hdrs), &[], cut)
                })
            }
            Some(f) => {
                release();
                let (status, ctype, extra, body) = error_response(&service, &f);
                write_response(&mut out, status, ctype, &extra, body.as_bytes())
            }
            None => {
                release();
                forward(&req, upstream, &mut out, &service, &operation, keys)
            }
        };
        answered?;
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

fn operation(service: &str, head: &str, body: &str) -> String {
    if service == "eks" {
        let line = head.lines().next().unwrap_or_default();
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let path = path.split('?').next().unwrap_or_default();
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        return match (method, segs.as_slice()) {
            ("GET", ["clusters"]) => "ListClusters",
            ("GET", ["clusters", _]) => "DescribeCluster",
            ("GET", ["clusters", _, "node-groups"]) => "ListNodegroups",
            ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
            _ => "Other",
        }
        .to_string();
    }
    // JSON protocols (Organizations, Secrets Manager) name the operation in
    // `X-Amz-Target: Prefix.Operation`.
    if let Some(target) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-amz-target")
            .then(|| v.trim())
    }) {
        return target.rsplit('.').next().unwrap_or_default().to_string();
    }
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string()
}

fn upstream_call(req: &Request, upstream: u16) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let head: String = req
        .head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    up.write_all(head.as_bytes())?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&req.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let hdrs = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = hdrs
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    Ok((status, hdrs, body))
}

fn content_type(hdrs: &str) -> String {
    header(hdrs, "content-type")
        .unwrap_or("text/xml")
        .to_string()
}

fn forward(
    req: &Request,
    upstream: u16,
    out: &mut TcpStream,
    service: &str,
    operation: &str,
    keys: &Mutex<HashMap<String, String>>,
) -> std::io::Result<()> {
    let (status, hdrs, body) = upstream_call(req, upstream)?;
    let body = if header(&hdrs, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(&body)
    } else {
        body
    };
    if service == "sts" && operation == "AssumeRole" {
        let text = String::from_utf8_lossy(&body);
        let req_body = String::from_utf8_lossy(&req.body);
        // RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole...
        let account = req_body
            .split("RoleArn=")
            .nth(1)
            .and_then(|s| s.split("%3A").nth(4))
            .map(str::to_string);
        let key = text
            .split("<AccessKeyId>")
            .nth(1)
            .and_then(|s| s.split("</AccessKeyId>").next())
            .map(str::to_string);
        if let (Some(a), Some(k)) = (account, key) {
            keys.lock().unwrap().insert(k, a);
        }
    }
    let extra: Vec<String> = hdrs
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("x-amz"))
        .map(str::to_string)
        .collect();
    write_response(out, status, &content_type(&hdrs), &extra, &body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

fn write_response(
    out: &mut TcpStream,
    status: u16,
    ctype: &str,
    extra: &[String],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// An error in the service's own wire format.
fn error_response(service: &str, f: &Fault) -> (u16, &'static str, Vec<String>, String) {
    let (status, code, message) = match f {
        Fault::Throttle(code) => (400, *code, "Rate exceeded"),
        Fault::AccessDenied => (
            403,
            "AccessDenied",
            "User: arn:aws:sts::000000000000:assumed-role/dbaudit-audit/dbaudit is not authorized to perform this action",
        ),
        Fault::Status(s) => (
            *s,
            if *s == 503 {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            },
            "injected server error",
        ),
        _ => unreachable!(),
    };
    match service {
        "eks" => {
            let t = match (f, code) {
                (Fault::AccessDenied, _) => "AccessDeniedException",
                (Fault::Throttle(_), _) => "ThrottlingException",
                _ => "ServerException",
            };
            (
                status,
                "application/json",
                vec![format!("x-amzn-ErrorType: {t}")],
                format!("{{\"message\":\"{message}\"}}"),
            )
        }
        "ec2" => {
            let code = if matches!(f, Fault::AccessDenied) {
                "UnauthorizedOperation"
            } else {
                code
            };
            (
                status,
                "text/xml",
                vec![],
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
                ),
            )
        }
        _ => (
            status,
            "text/xml",
            vec![],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        ),
    }
}
