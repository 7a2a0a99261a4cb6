//! Compaction and snapshot transfer (rules 3, 5, 6; docs/protocol.md,
//! "Snapshots"). The snapshot itself, as data, is `crate::snapshot`.
//!
//! Every replica snapshots its own applied state now and then and drops the
//! applied records below the snapshot (keeping a tail). `Accepted` does not
//! change: the applied set vouches for what the dropped records did (rule 5).
//! A replica that lacks a record its peer has dropped pulls the peer's
//! snapshot in chunks and installs it. Every applied seq is committed
//! everywhere, so a snapshot fits any later committer's log.

use std::sync::Arc;

use super::*;
use crate::pb::{SnapshotChunk, SnapshotReq};
use crate::snapshot::{Snapshot, SnapshotBlob};

/// Refuse to assemble a snapshot larger than storage can write as one entry.
const MAX_SNAPSHOT_BYTES: i64 = 1 << 30;

/// The encoded snapshot a replica hands out to peers.
pub(super) struct Serving {
    blob: SnapshotBlob,
    last_used: Nanos,
}

/// A snapshot being fetched, one chunk per request.
pub(super) struct Pull {
    from: NodeId,
    /// The snapshot must cover at least this applied prefix to be of use.
    min_prefix: Seq,
    /// 0 until the peer's first chunk names its snapshot.
    id: u64,
    total: i64,
    crc: u32,
    buf: Vec<u8>,
    last_progress: Nanos,
    last_sent: Nanos,
}

impl Replica {
    /// The state as it is now, as a snapshot. It carries the applied config
    /// records (a replica that installs it drops its own records at applied
    /// seqs, config records included) and the records of the out-of-order
    /// applied tail, which the installer must keep able to send.
    fn current_snapshot(&self) -> Snapshot {
        let mut configs = self.snapshot_configs.clone();
        for s in self.config_seqs.iter().filter(|&&s| self.applied.contains(s)) {
            if let Some(rec) = self.log.get(s) {
                configs.insert(*s, rec.clone());
            }
        }
        let prefix = self.applied.prefix_len();
        let tail_records = self.log.range(prefix..).filter(|(s, _)| self.applied.contains(**s)).map(|(_, r)| r.clone());
        Snapshot {
            applied: self.applied.clone(),
            kv: self.kv.clone(),
            config_records: configs.into_values().collect(),
            tail_records: tail_records.collect(),
        }
    }

    /// Snapshots the applied state once it has grown by `snapshot_every`:
    /// hands it to storage to save on the side (`Action::SaveSnapshot`); the
    /// state is a persistent map, so taking it costs no copy, and the
    /// replica goes on applying while it is encoded and written.
    pub(super) fn maybe_snapshot(&mut self) {
        let every = self.opts.snapshot_every;
        if every <= 0 || self.saving.is_some() || self.applied.prefix_len() < self.snapshot_prefix + every {
            return;
        }
        let snapshot = Arc::new(self.current_snapshot());
        let id = self.next_save_id;
        self.next_save_id += 1;
        self.saving = Some((id, snapshot.clone()));
        self.actions.push(Action::SaveSnapshot { id, snapshot });
    }

    /// Once the snapshot is durable: drops applied records below it minus
    /// `compact_retain`, and makes it the stored snapshot, in one durable
    /// write. Records only get dropped behind a snapshot already on disk,
    /// and the state it captured is still applied here (applied sets only
    /// grow; an install in between that went further makes it moot).
    pub(super) fn compact_to_saved(&mut self, id: u64) {
        let Some((_, snap)) = self.saving.take_if(|(saving, _)| *saving == id) else { return };
        let prefix = snap.prefix();
        if prefix <= self.snapshot_prefix {
            return;
        }
        let below = (prefix - self.opts.compact_retain).max(self.compacted_below);
        // Config records stay: the configuration in force is the newest one
        // held, and elections read the history (rule 9). They are a few per
        // membership change.
        let dropped = self.drop_records_below(below);
        debug_assert!(dropped.keys().all(|&s| self.applied.contains(s)), "only applied records are compacted");
        self.discarded = Some(dropped);
        self.write.snapshot = Some(snap);
        // The snapshot vouches that its applied set is committed; writing the
        // hard state with it lets the floor rely on it (replayable prefix).
        self.hard.rewrite();
        self.snapshot_prefix = prefix;
        self.compacted_below = below;
        self.stats.snapshots_taken += 1;
        self.event(Event::Compacted { below });
    }

    /// Whether this replica lacks a seq below `prefix`, given what it holds
    /// and has applied.
    pub(super) fn lacks_below(&self, prefix: Seq) -> bool {
        self.accepted.prefix_len() < prefix
    }

    // ---------------------------------------------------------- fetching

    /// Starts fetching `from`'s snapshot unless a fetch is already going.
    pub(super) fn start_pull(&mut self, from: NodeId, min_prefix: Seq) {
        if from == self.opts.id || self.pull.is_some() || self.leader_ref().is_some() {
            return;
        }
        self.pull = Some(Pull {
            from,
            min_prefix,
            id: 0,
            total: 0,
            crc: 0,
            buf: Vec::new(),
            last_progress: self.now,
            last_sent: self.now,
        });
        self.request_chunk();
    }

    fn request_chunk(&mut self) {
        let now = self.now;
        let id = self.opts.id;
        let Some(p) = self.pull.as_mut() else { return };
        p.last_sent = now;
        let req = SnapshotReq { snapshot_id: p.id, offset: p.buf.len() as i64, min_prefix: p.min_prefix, id };
        let to = p.from;
        self.send(to, Message::SnapshotReq(req), 0);
    }

    /// Retransmits a lost chunk request; gives up on a peer that stopped
    /// answering, so a later trigger can pick another.
    pub(super) fn snapshot_tick(&mut self) {
        let now = self.now;
        if let Some(p) = &self.pull {
            if now >= p.last_progress + 2 * self.opts.lease_ns {
                self.pull = None;
            } else if now >= p.last_sent + self.opts.retransmit_ns {
                self.request_chunk();
            }
        }
        // A served snapshot is a whole copy of the state: free it once no
        // peer has asked for a while.
        if self.serving.as_ref().is_some_and(|s| now >= s.last_used + 10 * self.opts.lease_ns) {
            self.serving = None;
        }
    }

    pub(super) fn handle_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk) {
        let now = self.now;
        let Some(p) = self.pull.as_mut().filter(|p| p.from == from) else { return };
        if chunk.snapshot_id == 0 {
            // The peer cannot serve what we asked (or replaced its snapshot):
            // stop; the next forward or election that needs one starts over.
            self.pull = None;
            return;
        }
        if p.id == 0 {
            if chunk.offset != 0 {
                return;
            }
            if chunk.prefix < p.min_prefix || !(0..=MAX_SNAPSHOT_BYTES).contains(&chunk.total_len) {
                self.pull = None;
                return;
            }
            p.id = chunk.snapshot_id;
            p.total = chunk.total_len;
            p.crc = chunk.crc;
        }
        if chunk.snapshot_id != p.id || chunk.offset != p.buf.len() as i64 {
            return; // a duplicate or a reply to an earlier request
        }
        let len = p.buf.len() as i64 + chunk.data.len() as i64;
        if len > p.total || (chunk.data.is_empty() && len < p.total) {
            self.pull = None;
            return;
        }
        p.buf.extend_from_slice(&chunk.data);
        p.last_progress = now;
        if len < p.total {
            self.request_chunk();
            return;
        }
        let p = self.pull.take().expect("checked above");
        if crc32fast::hash(&p.buf) != p.crc {
            return;
        }
        match Snapshot::decode(&p.buf) {
            Ok(snap) if snap.prefix() >= p.min_prefix => self.install_snapshot(from, snap),
            _ => {}
        }
    }

    /// Replaces the state with a peer's snapshot. Held records at seqs the
    /// snapshot applied are dropped: the snapshot speaks for them, and a
    /// held record there may be an older committer's record that lost (rule
    /// 4 would otherwise keep it as "committed" at the next adoption). The
    /// snapshot's tail records take their place above its prefix, so every
    /// seq `Accepted` claims at or above `compacted_below` stays sendable
    /// (rules 3, 5). Records this replica applied that the snapshot did not
    /// are held and committed, so they apply again on top of the new state.
    fn install_snapshot(&mut self, from: NodeId, snap: Snapshot) {
        if self.leader_ref().is_some() || snap.prefix() <= self.applied.prefix_len() {
            return;
        }
        // A candidate asked for votes with the state it had; start over.
        if matches!(self.role, RoleState::Candidate(_)) {
            self.become_follower();
        }
        let applied_before = self.applied.clone();
        let drop: Vec<Seq> = self.log.keys().copied().filter(|&s| snap.applied.contains(s)).collect();
        for seq in drop {
            self.drop_record(seq);
        }
        self.hard.commit_all(&snap.applied);
        self.applied = snap.applied.clone();
        self.kv = snap.kv.clone();
        for rec in &snap.tail_records {
            self.hold_record(rec.clone());
        }
        let before = self.config().clone();
        for rec in snap.config_records.iter().filter(|r| !self.log.contains_key(&r.seq)) {
            self.snapshot_configs.insert(rec.seq, rec.clone());
        }
        if *self.config() != before {
            self.config_changed();
        }
        let prefix = snap.prefix();
        self.snapshot_prefix = prefix;
        self.compacted_below = self.compacted_below.max(prefix);
        self.write.snapshot = Some(Arc::new(snap));
        self.recompute_accepted();
        self.refresh_apply_ready();
        self.stats.snapshots_installed += 1;
        self.event(Event::SnapshotInstalled { from, prefix });
        self.apply_committed();
        // What this replica applied it has acknowledged to clients or
        // counted in commits; if the new state lost any of it, no record is
        // left to bring it back. Stop rather than serve a state that forgot.
        if let Some(lost) = applied_before.iter_from(self.applied.prefix_len()).find(|&s| !self.applied.contains(s)) {
            panic!(
                "replica {}: installing member {from}'s snapshot (prefix {prefix}) un-applied seq {lost}, and no held \
                 record can apply it again",
                self.opts.id
            );
        }
    }

    // ----------------------------------------------------------- serving

    pub(super) fn handle_snapshot_req(&mut self, from: NodeId, req: SnapshotReq) {
        let chunk = self.snapshot_chunk(&req).unwrap_or_default();
        self.send(from, Message::SnapshotChunk(chunk), 0);
    }

    /// `None` when this replica cannot serve the request: it has not applied
    /// `MinPrefix`, or the snapshot asked for was replaced.
    fn snapshot_chunk(&mut self, req: &SnapshotReq) -> Option<SnapshotChunk> {
        let now = self.now;
        if req.snapshot_id == 0 {
            let fresh_enough = self.serving.as_ref().is_some_and(|s| s.blob.prefix >= req.min_prefix);
            if !fresh_enough {
                if self.applied.prefix_len() < req.min_prefix {
                    return None;
                }
                let id = self.next_blob_id;
                self.next_blob_id += 1;
                self.serving = Some(Serving { blob: SnapshotBlob::new(id, &self.current_snapshot()), last_used: now });
            }
        }
        let chunk_bytes = self.opts.snapshot_chunk_bytes.max(1);
        let serving = self.serving.as_mut()?;
        if req.snapshot_id != 0 && req.snapshot_id != serving.blob.id {
            return None;
        }
        serving.last_used = now;
        let blob = &serving.blob;
        let total = blob.bytes.len();
        let offset = usize::try_from(req.offset).ok().filter(|&o| o <= total)?;
        let end = (offset + chunk_bytes).min(total);
        self.stats.snapshot_chunks_served += 1;
        let blob = &self.serving.as_ref()?.blob;
        Some(SnapshotChunk {
            snapshot_id: blob.id,
            offset: req.offset,
            data: blob.bytes[offset..end].to_vec(),
            total_len: total as i64,
            prefix: blob.prefix,
            crc: blob.crc,
        })
    }
}
