//! The scalar types every module shares: the replica, the data types it
//! keeps (bitmaps, records, configurations, snapshots) and storage. Kept
//! out of `replica` so that those modules do not depend on it.

/// A member's id, as `ReplicaInfo.Id` and `LeaderId.Id` carry it.
pub type NodeId = i64;

/// A log sequence number.
pub type Seq = i64;

/// Nanoseconds on the replica's own monotonic clock. The replica never reads
/// a clock: every input carries `now`.
pub type Nanos = u64;

/// Chosen by the caller; echoed in the reply so it can find its client.
pub type RequestId = u64;

/// The largest seq, term, member id, offset or length a message or a stored
/// snapshot may carry. Far above anything a cluster reaches, and low enough
/// that adding a few such values never overflows an `i64`.
pub const MAX_WIRE_VALUE: i64 = 1 << 61;
