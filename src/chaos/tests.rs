//! Each fault through real loopback sockets: a client, the proxy, and an
//! echo server behind it. Waits are bounded; the only timing assertions are
//! lower bounds a delay must respect.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::*;

/// Generous bound on anything that should happen.
const BOUND: Duration = Duration::from_secs(10);
/// How long bytes must stay away to count as held back.
const SETTLE: Duration = Duration::from_millis(300);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An echo server; returns its address.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A proxy with links 1>2 and 1>3 in front of one echo server each.
async fn proxy(seed: u64) -> (Chaos, SocketAddr, SocketAddr) {
    let chaos = Chaos::new(seed);
    let a = chaos.add_link(Some((1, 2)), any_port(), echo_server().await.to_string()).await.unwrap();
    let b = chaos.add_link(Some((1, 3)), any_port(), echo_server().await.to_string()).await.unwrap();
    (chaos, a, b)
}

fn rules(specs: &[&str]) -> Vec<FaultSpec> {
    parse_all(specs).unwrap()
}

/// Sends `data` and reads as many bytes back.
async fn round_trip(s: &mut TcpStream, data: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(data).await?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).await?;
    Ok(back)
}

/// Whether the connection is closed by the far side within [`BOUND`]: a
/// read returns an error (reset) or end of stream.
async fn is_cut(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match timeout(BOUND, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn without_faults_bytes_pass_unchanged_and_in_order() {
    let (_chaos, a, _) = proxy(1).await;
    let mut s = TcpStream::connect(a).await.unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.unwrap();
    };
    let mut back = vec![0u8; data.len()];
    let recv = r.read_exact(&mut back);
    let (_, got) = timeout(BOUND, async { tokio::join!(send, recv) }).await.expect("echo within the bound");
    got.unwrap();
    assert!(back == data, "the stream came back changed");
}

#[tokio::test]
async fn delay_holds_each_direction_back() {
    let (chaos, a, _) = proxy(1).await;
    chaos.set(rules(&["delay=60ms"])).unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    let start = Instant::now();
    let back = timeout(BOUND, round_trip(&mut s, b"ping")).await.unwrap().unwrap();
    assert_eq!(back, b"ping");
    assert!(
        start.elapsed() >= Duration::from_millis(120),
        "a round trip crosses the delay twice: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn jitter_never_reorders_a_stream() {
    let (chaos, a, _) = proxy(7).await;
    chaos.set(rules(&["jitter=20ms"])).unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    let (mut r, mut w) = s.split();
    // Many separate small writes, each likely its own chunk with its own draw.
    let send = async {
        for i in 0..200u32 {
            w.write_all(&i.to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
    };
    let mut back = vec![0u8; 800];
    let recv = r.read_exact(&mut back);
    let (_, got) = timeout(BOUND, async { tokio::join!(send, recv) }).await.expect("echo within the bound");
    got.unwrap();
    let numbers: Vec<u32> = back.chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn drop_resets_the_connection_and_only_its_link() {
    let (chaos, a, b) = proxy(3).await;
    chaos.set(rules(&["link=1>2,drop=100%"])).unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    let _ = s.write_all(b"lost").await;
    assert!(is_cut(&mut s).await, "a dropped chunk resets its connection");
    assert_eq!(chaos.counters(1, 2).unwrap().dropped.load(Ordering::Relaxed), 1);
    let mut other = TcpStream::connect(b).await.unwrap();
    assert_eq!(timeout(BOUND, round_trip(&mut other, b"ok")).await.unwrap().unwrap(), b"ok", "1>3 has no fault");
}

/// How many round trips connection 0 of link 1>2 survives under `drop=30%`
/// with `seed`.
async fn survived_round_trips(seed: u64) -> usize {
    let (chaos, a, _) = proxy(seed).await;
    chaos.set(rules(&["drop=30%"])).unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    for i in 0..1000 {
        // One write, then its echo: one chunk each way, so the draws do not
        // depend on how the kernel happens to split the bytes.
        if timeout(BOUND, round_trip(&mut s, b"x")).await.expect("no hang").is_err() {
            return i;
        }
    }
    1000
}

#[tokio::test]
async fn the_seed_repeats_the_draws() {
    let first = survived_round_trips(42).await;
    assert!(first < 1000, "30% drop per chunk ends a connection long before 1000 round trips");
    assert_eq!(survived_round_trips(42).await, first, "same seed, same connection, same draws");
}

#[tokio::test]
async fn reset_every_cuts_every_connection_of_the_link() {
    let (chaos, a, b) = proxy(1).await;
    chaos.set(rules(&["link=1-2,reset-every=100ms"])).unwrap();
    let mut s1 = TcpStream::connect(a).await.unwrap();
    let mut s2 = TcpStream::connect(a).await.unwrap();
    assert!(is_cut(&mut s1).await && is_cut(&mut s2).await, "both connections of 1>2 are reset");
    assert!(chaos.counters(1, 2).unwrap().reset.load(Ordering::Relaxed) >= 2);
    // A new connection works until the next period ends (retried, as one
    // could land right on a period's end).
    let start = Instant::now();
    loop {
        let mut again = TcpStream::connect(a).await.unwrap();
        if let Ok(Ok(back)) = timeout(BOUND, round_trip(&mut again, b"again")).await {
            assert_eq!(back, b"again");
            break;
        }
        assert!(start.elapsed() < BOUND, "no new connection got through between resets");
    }
    let mut other = TcpStream::connect(b).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert_eq!(timeout(BOUND, round_trip(&mut other, b"ok")).await.unwrap().unwrap(), b"ok", "1>3 is not reset");
}

#[tokio::test]
async fn a_partition_refuses_and_cuts_until_cleared() {
    let (chaos, a, b) = proxy(1).await;
    let mut open = TcpStream::connect(a).await.unwrap();
    assert_eq!(timeout(BOUND, round_trip(&mut open, b"before")).await.unwrap().unwrap(), b"before");
    chaos.set(rules(&["partition=1|2"])).unwrap();
    assert!(is_cut(&mut open).await, "an open connection across the partition is reset");
    let mut refused = TcpStream::connect(a).await.unwrap();
    assert!(is_cut(&mut refused).await, "a new connection across the partition is refused");
    let mut bridge = TcpStream::connect(b).await.unwrap();
    assert_eq!(timeout(BOUND, round_trip(&mut bridge, b"3")).await.unwrap().unwrap(), b"3", "3 is in no group");
    chaos.clear();
    let mut healed = TcpStream::connect(a).await.unwrap();
    assert_eq!(timeout(BOUND, round_trip(&mut healed, b"after")).await.unwrap().unwrap(), b"after");
}

#[tokio::test]
async fn a_timed_partition_heals_by_itself() {
    let (chaos, a, _) = proxy(1).await;
    chaos.set(rules(&["partition=1|2@300ms"])).unwrap();
    assert!(chaos.rules()[0].contains("heals in"), "{:?}", chaos.rules());
    let mut refused = TcpStream::connect(a).await.unwrap();
    assert!(is_cut(&mut refused).await, "cut while it lasts");
    let start = Instant::now();
    loop {
        let mut s = TcpStream::connect(a).await.unwrap();
        if let Ok(Ok(back)) = timeout(Duration::from_secs(1), round_trip(&mut s, b"healed")).await {
            assert_eq!(back, b"healed");
            break;
        }
        assert!(start.elapsed() < BOUND, "the partition did not heal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(200), "healed early: {:?}", start.elapsed());
    assert!(chaos.rules()[0].ends_with("(healed)"), "{:?}", chaos.rules());
}

#[tokio::test]
async fn a_blackhole_holds_bytes_until_it_lifts() {
    let (chaos, a, _) = proxy(1).await;
    let mut s = TcpStream::connect(a).await.unwrap();
    assert_eq!(timeout(BOUND, round_trip(&mut s, b"1")).await.unwrap().unwrap(), b"1");
    chaos.set(rules(&["blackhole"])).unwrap();
    // Let the pumps see the change before writing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    assert!(timeout(SETTLE, s.read_exact(&mut buf)).await.is_err(), "nothing crosses a blackhole");
    let mut new = TcpStream::connect(a).await.unwrap();
    new.write_all(b"new!").await.unwrap();
    let mut new_buf = [0u8; 4];
    assert!(timeout(SETTLE, new.read_exact(&mut new_buf)).await.is_err(), "a new connection goes nowhere");
    chaos.clear();
    timeout(BOUND, s.read_exact(&mut buf)).await.expect("the held bytes arrive once it lifts").unwrap();
    assert_eq!(&buf, b"held");
    timeout(BOUND, new.read_exact(&mut new_buf)).await.expect("the new connection goes through").unwrap();
    assert_eq!(&new_buf, b"new!");
}

#[tokio::test]
async fn a_down_target_is_a_refused_connection() {
    let chaos = Chaos::new(1);
    let closed = TcpListener::bind(any_port()).await.unwrap().local_addr().unwrap();
    let a = chaos.add_link(Some((1, 2)), any_port(), closed.to_string()).await.unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    assert!(is_cut(&mut s).await);
    assert_eq!(chaos.counters(1, 2).unwrap().target_unreachable.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn rules_must_name_members_the_proxy_has() {
    let (chaos, _, _) = proxy(1).await;
    let err = chaos.set(rules(&["link=1-4,delay=1ms"])).unwrap_err();
    assert_eq!(err.to_string(), "`link=1-4,delay=1ms` names member 4, which is not in this cluster (members: 1, 2, 3)");
    let anonymous = Chaos::new(1);
    anonymous.add_link(None, any_port(), echo_server().await.to_string()).await.unwrap();
    assert!(matches!(anonymous.set(rules(&["partition=1|2"])), Err(ChaosError::NoMemberIds { .. })));
    anonymous.set(rules(&["delay=1ms"])).expect("faults for all links need no ids");
    let status = chaos.status();
    assert_eq!(status.links.len(), 2);
    assert!(status.rules.is_empty(), "a refused set changes nothing");
}

/// One direction ends (the client shuts down its write half) while the
/// other stays open; a reset then cuts the connection. The proxy must not
/// wait again on the pump that already finished (a JoinHandle polled after
/// completion panics).
#[tokio::test]
async fn a_reset_after_one_direction_ended_closes_cleanly() {
    let target = TcpListener::bind(any_port()).await.unwrap();
    let target_addr = target.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = target.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
        // Keeps its own direction open.
        tokio::time::sleep(BOUND * 2).await;
    });
    let front = TcpListener::bind(any_port()).await.unwrap();
    let mut client = TcpStream::connect(front.local_addr().unwrap()).await.unwrap();
    let (inbound, _) = front.accept().await.unwrap();
    let faults = LinkFaults { reset_every: Some(Duration::from_millis(200)), ..LinkFaults::default() };
    let (_faults_tx, faults) = watch::channel(faults);
    let (_epoch_tx, epoch) = watch::channel(Instant::now());
    let link =
        Arc::new(LinkRuntime { target: target_addr.to_string(), faults, epoch, seed: 1, counters: Arc::default() });
    let task = tokio::spawn(proxy::connection(inbound, link.clone(), SplitMix::new(1)));
    client.shutdown().await.unwrap();
    let ended = timeout(BOUND, task).await.expect("the reset ends the connection");
    assert!(ended.is_ok(), "the connection task failed: {ended:?}");
    assert_eq!(link.counters.reset.load(Ordering::Relaxed), 1);
}
