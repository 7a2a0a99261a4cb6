//! The command line: thin commands that parse, call the library, and render.
//!
//! Each client command lives in its own module with an `Args` struct and a
//! `run`; `client` owns endpoints, deadlines and redirects, `output` owns
//! tables, plain text and JSON, so the commands stay a screen long.

mod bench;
mod chaos;
mod check;
mod client;
mod completions;
mod config;
mod get;
mod leader;
mod local;
mod local_cluster;
mod log;
mod node;
mod node_file;
mod output;
mod propose;
mod recover;
mod snapshot;
mod status;
mod watch;

use std::fmt;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Exit codes scripts can rely on (documented in `--help`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    /// No endpoint answered, or no leader is elected.
    pub const UNAVAILABLE: u8 = 3;
    /// The `--timeout` deadline passed.
    pub const TIMEOUT: u8 = 4;
    /// A membership change refused as unsafe (`traftctl config`).
    pub const UNSAFE: u8 = 5;

    /// The exit code for a server's refusal, by its kind alone: the one
    /// mapping every command uses.
    pub fn of_kind(kind: traftctl::pb::ErrorKind) -> u8 {
        use traftctl::pb::ErrorKind;
        match kind {
            ErrorKind::NotLeader | ErrorKind::NoLeader | ErrorKind::ElectionLost => UNAVAILABLE,
            ErrorKind::Timeout => TIMEOUT,
            ErrorKind::Unsafe => UNSAFE,
            ErrorKind::None | ErrorKind::OutcomeUnknown | ErrorKind::Rejected | ErrorKind::NotAnInteger => ERROR,
        }
    }
}

/// The `--help` text for exit codes; kept next to the constants above.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok
  1  error (the request failed, e.g. `incr` on a string, or a proposal whose outcome is unknown)
  2  usage (bad arguments or a bad operation)
  3  cluster unavailable: no endpoint answered, or no leader is elected
  4  timeout: the --timeout deadline passed (for `propose`: the outcome is unknown)
  5  refused as unsafe: a membership change that could leave the cluster without a quorum (`config`),
     or a leadership transfer to a member that cannot take over (`leader transfer`)";

/// An error that knows its exit code. `main` prints `error: {error:#}` and
/// exits with `code`; everything else defaults to [`exit::ERROR`].
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        CliError { code, error: error.into() }
    }

    pub fn msg(code: u8, message: impl fmt::Display) -> Self {
        CliError { code, error: anyhow::anyhow!("{message}") }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        Self::msg(exit::USAGE, message)
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}: {:#}", self.code, self.error)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError { code: exit::ERROR, error }
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError { code: exit::ERROR, error: error.into() }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

#[derive(Debug, Parser)]
#[command(
    name = "traftctl",
    version,
    about = "traft consensus: run a cluster member, or operate a cluster",
    long_about = "traftctl is both a member of a traft cluster (`node`, `local-cluster`) and the operator's \
                  client (`propose`, `get`, `status`, `log`, `config`, `watch`, `bench`).\n\ntraft is a Raft \
                  variant with out-of-order commit and apply and generalized quorums.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(flatten)]
    pub client: client::ClientOpts,

    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a whole cluster of N members in this process, on 127.0.0.1.
    LocalCluster(local_cluster::Args),
    /// Run one member of a multi-machine cluster.
    Node(node::Args),
    /// Propose a command (`set`, `incr`, `del`) to the leader and wait until it commits.
    Propose(propose::Args),
    /// Read a key.
    Get(get::Args),
    /// Show the cluster's members and their logs, or one replica's full status.
    Status(status::Args),
    /// List a replica's log records.
    Log(log::Args),
    /// Show or change the cluster configuration: members and quorums.
    #[command(subcommand)]
    Config(config::Command),
    /// Back up the cluster's state, inspect a backup, or restore one into a new data directory.
    #[command(subcommand)]
    Snapshot(snapshot::Command),
    /// Check the cluster's consistency (`check hash`: equal states at equal applied sets).
    #[command(subcommand)]
    Check(check::Command),
    /// Move leadership to another member (`leader transfer [--to ID]`).
    #[command(subcommand)]
    Leader(leader::Command),
    /// Stream the cluster's events (elections, commits, applies) until Ctrl-C.
    Watch(watch::Args),
    /// Load the cluster with concurrent clients and report throughput and latency.
    Bench(bench::Args),
    /// Change the faults of a running `local-cluster --chaos`: `set SPEC...`, `clear`, `show`.
    #[command(subcommand, after_help = chaos::AFTER_HELP)]
    Chaos(chaos::Command),
    /// Crash, freeze, thaw or restart a member of a running `local-cluster`:
    /// `kill|pause|resume|restart ID`, `list`.
    #[command(subcommand, after_help = local::AFTER_HELP)]
    Local(local::Command),
    /// Print a shell completion script to stdout.
    Completions(completions::Args),
    /// Write the completion scripts and man pages into a directory (for packaging
    /// and for regenerating `completions/` and `man/`).
    #[command(hide = true)]
    GenDocs(completions::GenDocsArgs),
}

/// The client options (`ClientOpts`, global so that every client command
/// and `traftctl --endpoints ... status` take them) by id, with their flag.
const CLIENT_OPTIONS: [(&str, &str); 7] = [
    ("endpoints", "--endpoints"),
    ("timeout", "--timeout"),
    ("output", "--output (-o)"),
    ("cacert", "--cacert"),
    ("client_cert", "--cert"),
    ("client_key", "--key"),
    ("insecure_skip_tls_verify", "--insecure-skip-tls-verify"),
];

/// Commands that run members rather than talk to them: the client options
/// mean nothing there.
const MEMBER_COMMANDS: [&str; 2] = ["node", "local-cluster"];

/// The command line as parsed, helped and documented: [`Cli`] with the
/// client options left out of the member commands' help, usage, man pages
/// and completions.
pub fn command() -> clap::Command {
    command_from(Cli::command())
}

/// clap hands a global argument to every subcommand that has none of that
/// id, so a member command gets a hidden copy of its own instead; what it
/// parses still reaches `Cli::client`, and [`refuse_client_options`] turns
/// it down.
fn command_from(cmd: clap::Command) -> clap::Command {
    let client: Vec<clap::Arg> =
        cmd.get_arguments().filter(|a| CLIENT_OPTIONS.iter().any(|(id, _)| a.get_id() == id)).cloned().collect();
    // Mapped in place: `mut_subcommand` would move them to the end of the help.
    cmd.mut_subcommands(|sub| {
        if !MEMBER_COMMANDS.contains(&sub.get_name()) {
            return sub;
        }
        client.iter().fold(sub, |sub, a| sub.arg(a.clone().global(false).hide(true)))
    })
}

/// The command the completion scripts are made from. The scripts offer
/// hidden options too, so here the member commands get no client options at
/// all: the top level keeps them (not global) and every other command gets
/// its own (global, so that `config`'s subcommands have them too).
pub fn completion_command() -> clap::Command {
    let cmd = Cli::command();
    let is_client = |a: &clap::Arg| CLIENT_OPTIONS.iter().any(|(id, _)| a.get_id() == id);
    let client: Vec<clap::Arg> = cmd.get_arguments().filter(|a| is_client(a)).cloned().collect();
    cmd.mut_args(|a| if is_client(&a) { a.global(false) } else { a }).mut_subcommands(|sub| {
        if MEMBER_COMMANDS.contains(&sub.get_name()) {
            return sub;
        }
        client.iter().fold(sub, |sub, a| sub.arg(a.clone()))
    })
}

/// A client option given to a member command is a mistake worth naming
/// (it would do nothing): usage error.
fn refuse_client_options(matches: &clap::ArgMatches) -> Result<(), CliError> {
    let Some((name, sub)) = matches.subcommand() else { return Ok(()) };
    if !MEMBER_COMMANDS.contains(&name) {
        return Ok(());
    }
    let given = |m: &clap::ArgMatches, id: &str| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    match CLIENT_OPTIONS.iter().find(|(id, _)| given(matches, id) || given(sub, id)) {
        Some((_, flag)) => Err(CliError::usage(format!(
            "{flag} is a client option; `traftctl {name}` runs members and does not use it (it is for commands \
             such as `traftctl status`)"
        ))),
        None => Ok(()),
    }
}

pub fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)))
        .map_err(|e| e.format(&mut command()));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A node's --config file may set its logging, so it is read first.
    let prepared = refuse_client_options(&matches).and_then(|()| match &mut cli.command {
        Command::Node(args) => {
            let sub = matches.subcommand_matches("node").expect("the node command was parsed");
            node_file::merge(args, &mut cli.verbose, &matches, sub).map(|()| args.log_format)
        }
        _ => Ok(LogFormat::Text),
    });
    let log_format = match prepared {
        Ok(format) => format,
        Err(e) => {
            eprintln!("error: {:#}", e.error);
            return ExitCode::from(e.code);
        }
    };
    init_logging(cli.verbose, log_format);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `traftctl watch | head` closes our stdout; that is how the reader
        // says it has seen enough, not an error.
        Err(e) if is_broken_pipe(&e.error) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}

fn run(cli: Cli) -> CliResult<u8> {
    let mut opts = cli.client;
    opts.load_tls()?;
    let rt = runtime(&cli.command)?;
    match cli.command {
        Command::LocalCluster(args) => rt.block_on(local_cluster::run(args)),
        Command::Node(args) => rt.block_on(node::run(args)),
        Command::Propose(args) => rt.block_on(propose::run(&opts, args)),
        Command::Get(args) => rt.block_on(get::run(&opts, args)),
        Command::Status(args) => rt.block_on(status::run(&opts, args)),
        Command::Log(args) => rt.block_on(log::run(&opts, args)),
        Command::Config(cmd) => rt.block_on(config::run(&opts, cmd)),
        Command::Leader(cmd) => rt.block_on(leader::run(&opts, cmd)),
        Command::Check(cmd) => rt.block_on(check::run(&opts, cmd)),
        Command::Snapshot(cmd) => rt.block_on(snapshot::run(&opts, cmd)),
        Command::Watch(args) => rt.block_on(watch::run(&opts, args)),
        Command::Bench(args) => rt.block_on(bench::run(&opts, args)),
        Command::Chaos(cmd) => rt.block_on(chaos::run(&opts, cmd)),
        Command::Local(cmd) => rt.block_on(local::run(&opts, cmd)),
        Command::Completions(args) => completions::run(args),
        Command::GenDocs(args) => completions::gen_docs(args),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// One thread for everything but `bench`, whose clients want every core: a
/// one-shot command starts faster without a thread pool, and members run
/// on threads of their own (`node::start_on_thread`).
fn runtime(command: &Command) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Bench(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    Ok(builder.enable_all().build()?)
}

/// How log lines are written (`traftctl node --log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAFTCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        // A file or a pipe (journald, a log shipper) gets no escape codes.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
