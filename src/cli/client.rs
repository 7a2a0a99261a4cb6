//! Talking to a cluster: the global client options, one deadline per
//! command, trying endpoints in turn, following leader redirects, and turning
//! transport failures into errors an operator can act on.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use super::output::Format;
use super::{CliError, CliResult, exit};
use traftctl::node::MemberRole;
use traftctl::pb::{self, ErrorKind, LeaderId};
use traftctl::tls::{CLI_FLAGS, ClientTls};

/// What `traftctl local-cluster 3` listens on, so the client works with it
/// out of the box.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/// How many `OtherLeader` redirects one request follows. Two suffice when
/// leadership is stable (follower -> leader); more only chase an election.
const MAX_REDIRECTS: usize = 4;

/// Connecting gets at most this long per endpoint, so a host that drops our
/// SYNs does not use up the whole deadline before the next endpoint is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The hint printed with every "cannot reach" error.
const START_HINT: &str = "is the cluster running? (`traftctl local-cluster 3`)";

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Client options")]
pub struct ClientOpts {
    /// Cluster members to talk to, as HOST:PORT, comma separated.
    #[arg(
        long,
        global = true,
        env = "TRAFTCTL_ENDPOINTS",
        // The help (and the generated man pages) must not depend on who ran them.
        hide_env_values = true,
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINTS,
        value_parser = parse_endpoint,
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: Vec<String>,

    /// Give up after this long (e.g. 500ms, 5s, 2m): exit code 4.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Output format: tables for people, JSON for scripts, plain for `cut` and `awk`.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// CA certificate (PEM) to verify the members' certificates with; endpoints
    /// without a scheme then use TLS.
    #[arg(long, global = true, env = "TRAFTCTL_CACERT", hide_env_values = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate (PEM) to present, for members that require one; it
    /// needs --cacert too, and endpoints then use TLS.
    // The ids differ from the flags: `get` has a positional `key`.
    #[arg(
        long = "cert",
        global = true,
        env = "TRAFTCTL_CERT",
        hide_env_values = true,
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(
        long = "key",
        global = true,
        env = "TRAFTCTL_KEY",
        hide_env_values = true,
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Use TLS but accept any member certificate: encrypted, not authenticated.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,

    /// The loaded TLS files, filled by [`ClientOpts::load_tls`] once per run.
    #[arg(skip)]
    pub tls: Arc<ClientTls>,
}

impl ClientOpts {
    /// Reads and checks the TLS files, naming the file and the flag of a
    /// bad one: exit code 2, as for any bad argument.
    pub fn load_tls(&mut self) -> CliResult {
        let cert_key = self.client_cert.as_deref().zip(self.client_key.as_deref());
        let tls = ClientTls::load(self.cacert.as_deref(), cert_key, self.insecure_skip_tls_verify, CLI_FLAGS)
            .map_err(CliError::usage)?;
        self.tls = Arc::new(tls);
        Ok(())
    }
}

/// `HOST:PORT`, optionally with an `http://` or `https://` scheme.
fn parse_endpoint(s: &str) -> Result<String, String> {
    let s = s.trim();
    let hostport = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://")).unwrap_or(s);
    let valid = hostport
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if valid { Ok(s.to_string()) } else { Err(format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:7001)")) }
}

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h`. A unit is required: a bare
/// number is ambiguous between seconds and milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let bad = || format!("`{s}` is not a duration; use a number and a unit: 500ms, 5s, 2m, 1h");
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// Why one attempt at one address failed.
#[derive(Debug)]
pub enum Failure {
    /// The connection could not be made (nothing listens, DNS, routing):
    /// nothing was sent.
    Unreachable { addr: String, cause: String },
    /// TLS failed or was refused (a certificate, a plaintext/TLS mismatch):
    /// nothing was served. Retrying will not help until the flags change.
    Tls { addr: String, cause: String },
    /// The connection broke during the call: the request may have arrived.
    Broken { addr: String, cause: String },
    /// The command's deadline passed. `sent` tells whether the request may
    /// have reached the server (then a write's outcome is unknown).
    TimedOut { addr: String, sent: bool },
    /// The server answered with a gRPC error.
    Rpc { addr: String, status: tonic::Status },
}

impl Failure {
    /// Worth trying another endpoint: this one cannot serve at all. Only
    /// safe for requests that are harmless to repeat; `propose` decides
    /// for itself (see `Failure::maybe_arrived`).
    pub fn try_next(&self) -> bool {
        match self {
            Failure::Unreachable { .. } | Failure::Tls { .. } | Failure::Broken { .. } => true,
            Failure::Rpc { status, .. } => status.code() == tonic::Code::Unavailable,
            Failure::TimedOut { .. } => false,
        }
    }

    /// The request may have reached a server that acted on it.
    pub fn maybe_arrived(&self) -> bool {
        match self {
            Failure::Unreachable { .. } | Failure::Tls { .. } | Failure::TimedOut { sent: false, .. } => false,
            // Refused before any handler ran.
            Failure::Rpc { status, .. } => {
                !matches!(status.code(), tonic::Code::Unimplemented | tonic::Code::InvalidArgument)
            }
            Failure::Broken { .. } | Failure::TimedOut { sent: true, .. } => true,
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            Failure::Unreachable { addr, .. }
            | Failure::Tls { addr, .. }
            | Failure::Broken { addr, .. }
            | Failure::TimedOut { addr, .. }
            | Failure::Rpc { addr, .. } => addr,
        }
    }

    /// What went wrong, without the address.
    pub fn cause(&self) -> String {
        match self {
            Failure::Unreachable { cause, .. } | Failure::Tls { cause, .. } => cause.clone(),
            Failure::Broken { cause, .. } => format!("the connection broke: {cause}"),
            Failure::TimedOut { .. } => "no answer within --timeout".to_string(),
            Failure::Rpc { status, .. } => status.message().to_string(),
        }
    }

    /// `ADDR: cause`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.addr(), self.cause())
    }

    pub fn into_error(self, timeout: Duration) -> CliError {
        match self {
            Failure::Unreachable { addr, cause } => {
                CliError::msg(exit::UNAVAILABLE, format!("cannot reach {addr}: {cause}; {START_HINT}"))
            }
            Failure::Tls { addr, cause } => CliError::msg(exit::UNAVAILABLE, format!("cannot talk to {addr}: {cause}")),
            Failure::Broken { addr, cause } => {
                CliError::msg(exit::UNAVAILABLE, format!("lost the connection to {addr}: {cause}"))
            }
            Failure::TimedOut { addr, .. } => CliError::msg(
                exit::TIMEOUT,
                format!("no answer from {addr} within --timeout {}", fmt_duration(timeout)),
            ),
            Failure::Rpc { addr, status } => rpc_error(&addr, &status),
        }
    }
}

fn rpc_error(addr: &str, status: &tonic::Status) -> CliError {
    let message = status.message();
    match status.code() {
        tonic::Code::Unavailable => CliError::msg(exit::UNAVAILABLE, format!("{addr} is unavailable: {message}")),
        tonic::Code::DeadlineExceeded => CliError::msg(exit::TIMEOUT, format!("{addr} timed out: {message}")),
        tonic::Code::Unimplemented => CliError::msg(
            exit::ERROR,
            format!(
                "{addr} does not offer this request{}; is it a member's peer port (use its client port, \
                 --listen-client) or another traftctl version?",
                if message.is_empty() { String::new() } else { format!(" ({message})") }
            ),
        ),
        code => CliError::msg(exit::ERROR, format!("{addr} answered {code:?}: {message}")),
    }
}

/// The most specific cause in a transport error's chain, in words: tonic's
/// own top level is only "transport error".
pub(crate) fn connect_cause(error: &(dyn std::error::Error + 'static)) -> String {
    if let Some(tls) = traftctl::tls::tls_cause(error) {
        return tls;
    }
    let mut deepest = error;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                std::io::ErrorKind::TimedOut => "connection timed out".into(),
                _ => io.to_string(),
            };
        }
        deepest = e;
        current = e.source();
    }
    deepest.to_string()
}

/// What one server said to a request that only the leader can serve.
pub enum Answer<T> {
    Done(T),
    /// Not the leader; `addr` is where the leader is, when known.
    Redirect {
        leader: Option<LeaderId>,
        addr: String,
    },
    /// The server knows no leader.
    NoLeader,
    /// The request failed for a reason another endpoint would not change.
    Failed(CliError),
}

impl<T> Answer<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Done(v) => Answer::Done(f(v)),
            Answer::Redirect { leader, addr } => Answer::Redirect { leader, addr },
            Answer::NoLeader => Answer::NoLeader,
            Answer::Failed(e) => Answer::Failed(e),
        }
    }
}

/// One command's view of the cluster: where to go and until when.
#[derive(Debug, Clone)]
pub struct Client {
    pub endpoints: Vec<String>,
    pub timeout: Duration,
    deadline: tokio::time::Instant,
    tls: Arc<ClientTls>,
}

impl Client {
    pub fn new(opts: &ClientOpts) -> Self {
        Client {
            endpoints: opts.endpoints.clone(),
            timeout: opts.timeout,
            deadline: tokio::time::Instant::now() + opts.timeout,
            tls: opts.tls.clone(),
        }
    }

    /// Restarts the deadline: for long-running commands (bench, watch) the
    /// timeout bounds each request, not the whole run.
    pub fn renewed(&self) -> Self {
        Client { deadline: tokio::time::Instant::now() + self.timeout, ..self.clone() }
    }

    pub fn expired(&self) -> bool {
        tokio::time::Instant::now() >= self.deadline
    }

    /// Opens a connection to `addr` within the deadline.
    pub async fn channel(&self, addr: &str) -> Result<Channel, Failure> {
        let unreachable = |cause| Failure::Unreachable { addr: addr.to_string(), cause };
        let dial = self.tls.endpoint(addr).map_err(|cause| Failure::Tls { addr: addr.to_string(), cause })?;
        let connect_deadline = self.deadline.min(tokio::time::Instant::now() + CONNECT_TIMEOUT);
        match tokio::time::timeout_at(connect_deadline, dial.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => match traftctl::tls::tls_cause(&e) {
                Some(cause) => Err(Failure::Tls { addr: addr.to_string(), cause }),
                None => Err(unreachable(connect_cause(&e))),
            },
            Err(_) if connect_deadline < self.deadline => {
                Err(unreachable(format!("no connection within {}", fmt_duration(CONNECT_TIMEOUT))))
            }
            Err(_) => Err(Failure::TimedOut { addr: addr.to_string(), sent: false }),
        }
    }

    /// Connects to `addr` and runs one call on it, all within the deadline.
    pub async fn call<T>(
        &self,
        addr: &str,
        f: impl AsyncFnOnce(Channel) -> Result<T, tonic::Status>,
    ) -> Result<T, Failure> {
        let channel = self.channel(addr).await?;
        match tokio::time::timeout_at(self.deadline, f(channel)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(status)) => Err(classify_status(addr, status)),
            Err(_) => Err(Failure::TimedOut { addr: addr.to_string(), sent: true }),
        }
    }

    pub async fn status_of(&self, addr: &str) -> Result<pb::StatusReply, Failure> {
        self.call(addr, async |ch| admin(ch).status(pb::StatusReq {}).await.map(|r| r.into_inner())).await
    }

    /// Runs a leader-only request: tries the endpoints in order and follows
    /// each server's redirect to the leader, a bounded number of hops.
    pub async fn on_leader<T>(&self, mut ask: impl AsyncFnMut(&str) -> Result<Answer<T>, Failure>) -> CliResult<T> {
        let mut failures = Vec::new();
        let mut no_leader: Vec<String> = Vec::new();
        for endpoint in &self.endpoints {
            let mut addr = endpoint.clone();
            for hop in 0..=MAX_REDIRECTS {
                match ask(&addr).await {
                    Ok(Answer::Done(v)) => return Ok(v),
                    Ok(Answer::Failed(e)) => return Err(e),
                    Ok(Answer::Redirect { addr: next, .. }) if !next.is_empty() && hop < MAX_REDIRECTS => {
                        tracing::info!("{addr} is not the leader; following the redirect to {next}");
                        addr = next;
                    }
                    Ok(Answer::Redirect { leader, addr: next }) => {
                        no_leader.push(match leader {
                            _ if !next.is_empty() => format!("{addr} redirected more than {MAX_REDIRECTS} times"),
                            Some(l) => format!("{addr} names leader {l} but not its address"),
                            None => format!("{addr} knows no leader"),
                        });
                        break;
                    }
                    Ok(Answer::NoLeader) => {
                        no_leader.push(format!("{addr} knows no leader"));
                        break;
                    }
                    // A redirect names the leader's member address, which
                    // with separate listeners is its peer port: that may
                    // not serve this request, and then the next endpoint
                    // (perhaps the leader's client port) is tried.
                    Err(f) if f.try_next() || (hop > 0 && !f.maybe_arrived()) => {
                        failures.push(f);
                        break;
                    }
                    Err(f) => return Err(f.into_error(self.timeout)),
                }
            }
        }
        if !no_leader.is_empty() {
            return Err(no_leader_error(&no_leader, &failures));
        }
        Err(unreachable_error(failures, self.timeout))
    }

    /// The leader's address and status, found by asking the endpoints (and
    /// the leader they name) for their status.
    pub async fn find_leader(&self) -> CliResult<(String, pb::StatusReply)> {
        self.on_leader(async |addr| {
            let reply = self.status_of(addr).await?;
            Ok(if MemberRole::parse(&reply.role) == Some(MemberRole::Leader) {
                Answer::Done((addr.to_string(), reply))
            } else if reply.leader.is_some() {
                // A follower names the leader it last heard from; its own
                // answer is only as fresh as that.
                Answer::Redirect { leader: reply.leader, addr: reply.leader_addr }
            } else {
                Answer::NoLeader
            })
        })
        .await
    }

    /// The first endpoint that answers `Status`, leader or not: for views
    /// every replica can give (its configuration).
    pub async fn any_status(&self) -> CliResult<(String, pb::StatusReply)> {
        let mut failures = Vec::new();
        for addr in &self.endpoints {
            match self.status_of(addr).await {
                Ok(reply) => return Ok((addr.clone(), reply)),
                Err(f) if f.try_next() => failures.push(f),
                Err(f) => return Err(f.into_error(self.timeout)),
            }
        }
        Err(unreachable_error(failures, self.timeout))
    }
}

pub fn admin(channel: Channel) -> pb::t_raft_admin_client::TRaftAdminClient<Channel> {
    pb::t_raft_admin_client::TRaftAdminClient::new(channel)
}

pub fn raft(channel: Channel) -> pb::t_raft_client::TRaftClient<Channel> {
    pb::t_raft_client::TRaftClient::new(channel)
}

/// Why a call or stream broke, in words: the transport cause when there is
/// one (a reset connection), not tonic's "h2 protocol error".
pub fn status_cause(status: &tonic::Status) -> String {
    match std::error::Error::source(status) {
        Some(source) => connect_cause(source),
        None => status.message().to_string(),
    }
}

fn classify_status(addr: &str, status: tonic::Status) -> Failure {
    // With TLS 1.3 the server checks our certificate after our side of the
    // handshake is done, so its refusal arrives with the first call.
    if let Some(cause) = traftctl::tls::tls_cause(&status) {
        return Failure::Tls { addr: addr.to_string(), cause };
    }
    // A connection that breaks mid-call surfaces as Unavailable with the
    // transport error as its source; report its cause, not "transport error".
    if status.code() == tonic::Code::Unavailable
        && let Some(source) = std::error::Error::source(&status)
    {
        return Failure::Broken { addr: addr.to_string(), cause: connect_cause(source) };
    }
    Failure::Rpc { addr: addr.to_string(), status }
}

/// The parts of a leader-only reply (propose, get, config change) that say
/// how the request went.
pub trait LeaderReply {
    fn ok(&self) -> bool;
    /// Why it failed; the client decides by this alone.
    fn kind(&self) -> ErrorKind;
    /// What happened, in words, for people.
    fn err(&self) -> &str;
    fn other_leader(&self) -> (Option<LeaderId>, &str);
}

macro_rules! leader_reply {
    ($($reply:ty),*) => {$(
        impl LeaderReply for $reply {
            fn ok(&self) -> bool {
                self.ok
            }
            fn kind(&self) -> ErrorKind {
                // prost's getter: an unknown kind (a newer server) reads as
                // `None`, an error like any other.
                <$reply>::kind(self)
            }
            fn err(&self) -> &str {
                &self.err
            }
            fn other_leader(&self) -> (Option<LeaderId>, &str) {
                (self.other_leader, &self.other_leader_addr)
            }
        }
    )*};
}
leader_reply!(pb::ProposeReply, pb::GetReply, pb::ConfigChangeReply, pb::TransferLeadershipReply);

/// How a leader-only reply went.
pub enum Verdict<R> {
    Done(R),
    Redirect {
        leader: Option<LeaderId>,
        addr: String,
    },
    NoLeader,
    /// Refused for a reason another endpoint would not change.
    Refused(R),
}

/// Reads a leader-only reply by its kind, never by its text: the one place
/// that classifies replies, so rewording a server message changes no exit
/// code ([`exit::of_kind`] gives a refusal's).
pub fn verdict<R: LeaderReply>(reply: R) -> Verdict<R> {
    if reply.ok() {
        return Verdict::Done(reply);
    }
    match reply.kind() {
        ErrorKind::NotLeader => match reply.other_leader() {
            (None, "") => Verdict::NoLeader,
            (leader, addr) => Verdict::Redirect { leader, addr: addr.to_string() },
        },
        ErrorKind::NoLeader => Verdict::NoLeader,
        _ => Verdict::Refused(reply),
    }
}

/// [`verdict`] as an [`Answer`]; `refused` turns a refusal into the
/// command's error, with its context.
pub fn classify<R: LeaderReply>(reply: R, refused: impl FnOnce(R) -> CliError) -> Answer<R> {
    match verdict(reply) {
        Verdict::Done(r) => Answer::Done(r),
        Verdict::Redirect { leader, addr } => Answer::Redirect { leader, addr },
        Verdict::NoLeader => Answer::NoLeader,
        Verdict::Refused(r) => Answer::Failed(refused(r)),
    }
}

/// The error for a refusal `what` got, with the exit code of its kind.
pub fn refusal(what: impl fmt::Display, reply: &impl LeaderReply) -> CliError {
    CliError::msg(exit::of_kind(reply.kind()), format!("{what}: {}", reply.err()))
}

pub fn no_leader_error(why: &[String], failures: &[Failure]) -> CliError {
    let mut parts = why.to_vec();
    parts.extend(failures.iter().map(Failure::describe));
    CliError::msg(
        exit::UNAVAILABLE,
        format!(
            "no leader: {}; the cluster may be electing one (check `traftctl status`, then retry)",
            parts.join("; ")
        ),
    )
}

/// Every endpoint failed before answering.
pub fn unreachable_error(mut failures: Vec<Failure>, timeout: Duration) -> CliError {
    match failures.len() {
        0 => CliError::usage("no endpoints given; pass --endpoints HOST:PORT,..."),
        1 => failures.remove(0).into_error(timeout),
        _ => {
            let code = if failures.iter().any(|f| matches!(f, Failure::TimedOut { .. })) {
                exit::TIMEOUT
            } else {
                exit::UNAVAILABLE
            };
            let parts: Vec<String> = failures.iter().map(Failure::describe).collect();
            CliError::msg(code, format!("cannot reach any endpoint ({}); {START_HINT}", parts.join("; ")))
        }
    }
}

/// `850ms`, `5s`, `1.5s`, `2m`: the form `--timeout` accepts.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", format!("{:.3}", d.as_secs_f64()).trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["5", "", "ms", "5 s", "-1s", "1d", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in ["850ms", "5s", "2m", "1.5s"] {
            assert_eq!(fmt_duration(parse_duration(d).unwrap()), d);
        }
    }

    fn refused(kind: ErrorKind, err: &str) -> pb::ProposeReply {
        pb::ProposeReply { kind: kind as i32, err: err.into(), ..Default::default() }
    }

    #[test]
    fn replies_are_read_by_kind_not_by_text() {
        // The words are arbitrary: only the kind decides.
        let no_leader = refused(ErrorKind::NoLeader, "leadership lost (reworded)");
        assert!(matches!(verdict(no_leader), Verdict::NoLeader));
        let lost = refused(ErrorKind::OutcomeUnknown, "no leader: the cluster has to elect one first");
        assert!(matches!(verdict(lost), Verdict::Refused(r) if r.kind() == ErrorKind::OutcomeUnknown));
        let mut redirect = refused(ErrorKind::NotLeader, "");
        redirect.other_leader_addr = "127.0.0.1:7002".into();
        assert!(matches!(verdict(redirect), Verdict::Redirect { addr, .. } if addr == "127.0.0.1:7002"));
        assert!(matches!(verdict(refused(ErrorKind::NotLeader, "not the leader")), Verdict::NoLeader));
        let ok = pb::ProposeReply { ok: true, kind: ErrorKind::Rejected as i32, ..Default::default() };
        assert!(matches!(verdict(ok), Verdict::Done(_)), "ok wins over a stray kind");
        let newer = pb::ProposeReply { kind: 999, err: "from a newer server".into(), ..Default::default() };
        assert!(matches!(verdict(newer), Verdict::Refused(r) if r.kind() == ErrorKind::None));
    }

    #[test]
    fn each_refusal_kind_has_its_exit_code() {
        let code = |kind| refusal("x", &refused(kind, "why")).code;
        assert_eq!(code(ErrorKind::Unsafe), exit::UNSAFE);
        assert_eq!(code(ErrorKind::Timeout), exit::TIMEOUT);
        assert_eq!(code(ErrorKind::NoLeader), exit::UNAVAILABLE);
        assert_eq!(code(ErrorKind::ElectionLost), exit::UNAVAILABLE);
        assert_eq!(code(ErrorKind::Rejected), exit::ERROR);
        assert_eq!(code(ErrorKind::OutcomeUnknown), exit::ERROR);
        assert_eq!(code(ErrorKind::NotAnInteger), exit::ERROR);
    }

    #[test]
    fn endpoints() {
        assert!(parse_endpoint("127.0.0.1:7001").is_ok());
        assert!(parse_endpoint("http://host:1").is_ok());
        assert!(parse_endpoint("https://host:1").is_ok());
        assert!(parse_endpoint("[::1]:7001").is_ok());
        for bad in ["host", ":7001", "host:", "host:0", "host:99999"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
