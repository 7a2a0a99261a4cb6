//! One link's listener and its connections: bytes are read from one side,
//! held back by the link's delay, and written to the other, while the
//! link's faults may cut the connection at any moment.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::spec::LinkFaults;

/// The largest read, and so the largest chunk a fault decides on.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks held back per direction before the proxy stops reading: the
/// sender then feels back-pressure, as it would from a slow link.
const MAX_QUEUED_CHUNKS: usize = 1024;

/// What a link counts, for `chaos show` and for tests.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Connections accepted on the link's listener.
    pub accepted: AtomicU64,
    /// Connections refused or cut by a partition.
    pub cut_by_partition: AtomicU64,
    /// Connections closed by `reset-every`.
    pub reset: AtomicU64,
    /// Connections closed by `drop`.
    pub dropped: AtomicU64,
    /// Connections that could not reach the target (it is down).
    pub target_unreachable: AtomicU64,
}

/// Everything one link's tasks share.
pub(super) struct LinkRuntime {
    pub target: String,
    pub faults: watch::Receiver<LinkFaults>,
    /// When the current rules were set: `reset-every` counts its periods
    /// from here, so every connection of the link is reset at once.
    pub epoch: watch::Receiver<Instant>,
    pub seed: u64,
    pub counters: Arc<LinkCounters>,
}

/// Accepts connections until the task is aborted; dropping the `JoinSet`
/// then aborts every connection of the link too.
pub(super) async fn serve_link(listener: TcpListener, link: Arc<LinkRuntime>) {
    let mut connections = JoinSet::new();
    let mut next_connection: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    // Out of descriptors, or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                link.counters.accepted.fetch_add(1, Ordering::Relaxed);
                let rng = SplitMix::new(link.seed ^ next_connection.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                next_connection += 1;
                connections.spawn(connection(inbound, link.clone(), rng));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The source closed its side and every held byte was delivered.
    Eof,
    /// A socket error: the peer reset or vanished.
    Broken,
    /// The `drop` fault hit a chunk.
    Dropped,
    /// The supervisor cut the connection.
    Killed,
}

/// Resets a socket: a zero linger makes the close send RST, as a network
/// fault does, instead of a graceful FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

pub(super) async fn connection(inbound: TcpStream, link: Arc<LinkRuntime>, mut rng: SplitMix) {
    let mut faults = link.faults.clone();
    // A partition refuses; a blackhole leaves the new connection hanging,
    // as a host whose packets vanish would, until it lifts.
    loop {
        let f = *faults.borrow_and_update();
        if f.cut {
            link.counters.cut_by_partition.fetch_add(1, Ordering::Relaxed);
            reset(&inbound);
            return;
        }
        if !f.blackhole {
            break;
        }
        if faults.changed().await.is_err() {
            return;
        }
    }
    let outbound = match TcpStream::connect(&link.target).await {
        Ok(s) => s,
        Err(_) => {
            // The member is down: pass the refusal on.
            link.counters.target_unreachable.fetch_add(1, Ordering::Relaxed);
            reset(&inbound);
            return;
        }
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let (kill, killed) = watch::channel(false);
    let mut up = tokio::spawn(pump(in_read, out_write, link.faults.clone(), rng.fork(1), killed.clone()));
    let mut down = tokio::spawn(pump(out_read, in_write, link.faults.clone(), rng.fork(2), killed));
    let (mut up_done, mut down_done) = (false, false);
    let mut epoch = link.epoch.clone();
    let cut = loop {
        let f = *faults.borrow_and_update();
        if f.cut {
            break Some(&link.counters.cut_by_partition);
        }
        let next_reset = f.reset_every.map(|period| next_period_end(*epoch.borrow_and_update(), period));
        tokio::select! {
            end = &mut up, if !up_done => match end {
                Ok(End::Eof) => up_done = true,
                Ok(End::Dropped) => break Some(&link.counters.dropped),
                _ => break None,
            },
            end = &mut down, if !down_done => match end {
                Ok(End::Eof) => down_done = true,
                Ok(End::Dropped) => break Some(&link.counters.dropped),
                _ => break None,
            },
            _ = sleep_until_opt(next_reset), if next_reset.is_some() => break Some(&link.counters.reset),
            changed = faults.changed() => if changed.is_err() { break None },
            changed = epoch.changed() => if changed.is_err() { break None },
        }
        if up_done && down_done {
            return;
        }
    };
    if let Some(counter) = cut {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let _ = kill.send(true);
    // A pump blocked on nothing but its select always sees the kill; the
    // bound is for the unexpected. A pump that already ended was consumed
    // by the select above, and its handle must not be awaited again.
    let running = [(up, up_done), (down, down_done)].into_iter().filter(|(task, done)| !done && !task.is_finished());
    for (task, _) in running {
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
            abort.abort();
        }
    }
}

/// The end of the current `period` counted from `epoch`.
fn next_period_end(epoch: Instant, period: Duration) -> Instant {
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(epoch);
    let periods = elapsed.as_nanos() / period.as_nanos() + 1;
    epoch + period * u32::try_from(periods).unwrap_or(u32::MAX)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Cuts both sockets of the connection: RST to both ends.
fn abort(src: OwnedReadHalf, dst: OwnedWriteHalf) {
    reset(src.as_ref());
    reset(dst.as_ref());
    // No FIN before the RST: the write half must not shut down on drop.
    dst.forget();
    drop(src);
}

/// Moves bytes from `src` to `dst` under the link's faults, one direction of
/// one connection. Order is kept: a chunk is released no earlier than the
/// one before it, whatever its own jitter.
async fn pump(
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    mut faults: watch::Receiver<LinkFaults>,
    mut rng: SplitMix,
    mut killed: watch::Receiver<bool>,
) -> End {
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    // How much of the front chunk is already written.
    let mut written = 0;
    let mut last_release = Instant::now();
    let mut eof = false;
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let f = *faults.borrow_and_update();
        if eof && held.is_empty() {
            // Dropping the write half sends FIN: the close passes on.
            return End::Eof;
        }
        let front_at = held.front().map(|(at, _)| *at);
        let due = front_at.is_some_and(|at| at <= Instant::now());
        let may_read = !eof && !f.blackhole && held.len() < MAX_QUEUED_CHUNKS;
        tokio::select! {
            biased;
            _ = killed.wait_for(|k| *k) => {
                abort(src, dst);
                return End::Killed;
            }
            changed = faults.changed() => if changed.is_err() {
                abort(src, dst);
                return End::Killed;
            },
            n = dst.write(held.front().map_or(&[][..], |(_, c)| &c[written..])), if due && !f.blackhole => match n {
                Ok(0) | Err(_) => {
                    abort(src, dst);
                    return End::Broken;
                }
                Ok(n) => {
                    written += n;
                    if held.front().is_some_and(|(_, c)| written == c.len()) {
                        held.pop_front();
                        written = 0;
                    }
                }
            },
            _ = sleep_until_opt(front_at), if front_at.is_some() && !due && !f.blackhole => {}
            n = src.read(&mut buf), if may_read => match n {
                Ok(0) => eof = true,
                Err(_) => {
                    abort(src, dst);
                    return End::Broken;
                }
                Ok(n) => {
                    if f.drop_ppm > 0 && rng.below(1_000_000) < u64::from(f.drop_ppm) {
                        abort(src, dst);
                        return End::Dropped;
                    }
                    let jitter = if f.jitter.is_zero() { Duration::ZERO } else {
                        Duration::from_nanos(rng.below(f.jitter.as_nanos() as u64 + 1))
                    };
                    let release = (Instant::now() + f.delay + jitter).max(last_release);
                    last_release = release;
                    held.push_back((release, buf[..n].to_vec()));
                }
            },
        }
    }
}

/// A small seeded generator (SplitMix64): each connection gets its own
/// stream from the link's seed and its number, so a run's draws do not
/// depend on how the connections' tasks interleave.
#[derive(Debug, Clone)]
pub(super) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn fork(&mut self, stream: u64) -> SplitMix {
        SplitMix(self.next_u64() ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03))
    }
}
