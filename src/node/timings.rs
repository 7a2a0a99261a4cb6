//! Latency histograms for `/metrics`, filled by the threads that time
//! things (the storage thread, the snapshot saver, the driver) and read by
//! the metrics server; lock-free counters, so recording costs a few atomic
//! adds on the write path.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::replica::NodeId;

/// Upper bounds of the buckets, in seconds: 50 us to 10 s, the range from a
/// loopback round trip to a stalled disk.
pub const BUCKETS: [f64; 17] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A Prometheus histogram: a count per bucket (not cumulative; rendering
/// adds them up), the total count and the sum of the observations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// What a histogram holds at one instant: cumulative bucket counts, as the
/// exposition format wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Every latency a member times.
#[derive(Debug, Default)]
pub struct Timings {
    /// One fdatasync of the WAL (a group of writes).
    pub wal_fsync: Histogram,
    /// Encoding, writing and syncing one snapshot file.
    pub snapshot_save: Histogram,
    /// From sending a forward to a peer to its reply, per peer.
    forward_round_trip: Mutex<BTreeMap<NodeId, Histogram>>,
}

impl Timings {
    pub fn forward_round_trip(&self, peer: NodeId, d: Duration) {
        let mut per_peer = self.forward_round_trip.lock().unwrap_or_else(|e| e.into_inner());
        per_peer.entry(peer).or_default().observe(d);
    }

    pub fn forward_round_trips(&self) -> BTreeMap<NodeId, HistogramSnapshot> {
        let per_peer = self.forward_round_trip.lock().unwrap_or_else(|e| e.into_inner());
        per_peer.iter().map(|(id, h)| (*id, h.snapshot())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_adds_up() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(40));
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative[0], 1, "<= 50 us");
        assert_eq!(s.cumulative[3], 2, "<= 500 us");
        assert_eq!(s.cumulative[6], 3, "<= 5 ms");
        assert_eq!(*s.cumulative.last().unwrap(), 3, "a minute is above every bound, counted only in +Inf");
        assert!((s.sum_seconds - 60.00334).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
