//! Simulated clients and the history they record for the linearizability
//! check.
//!
//! A client has at most one request outstanding and records it truthfully:
//!
//! * a definite answer goes into the history with its return time;
//! * "not the leader" / "no leader" / an unreachable node mean the replica
//!   never appended the request, so it is left out and retried as a new op;
//! * "leadership lost", a timeout, or a crash of the node holding the request
//!   leave the outcome unknown: the write goes into the history with no
//!   return, and the client carries on under a fresh client id (its next op
//!   may well run concurrently with the unknown one);
//! * reads with an unknown outcome change nothing and are left out.

use std::collections::BTreeMap;

use traftctl::errors::TraftError;
use traftctl::kv::ApplyResult;
use traftctl::pb::Cmd;
use traftctl::pb::cmd::Value as PbValue;
use traftctl::replica::{ClientReply, NodeId, ReadConsistency, RequestId};

use crate::linearizability::{Input, Operation, Output, Value};
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct WorkloadParams {
    pub clients: usize,
    pub keys: usize,
    pub think_max_ns: u64,
    /// A client gives up on a request after this long (outcome unknown).
    pub timeout_ns: u64,
    /// Odds that an op goes to a random node instead of the presumed leader.
    pub wander_ppm: u64,
    /// `[start, end)` windows in which no client starts an op. Quiet spells
    /// let logs become equal, which is when elections are most contested
    /// (no candidate loses on a shorter log).
    pub pauses: Vec<(u64, u64)>,
}

/// What a client asks of a replica.
#[derive(Debug, Clone)]
pub enum Request {
    Propose(Cmd),
    Read { key: String, consistency: ReadConsistency },
}

/// A request leaving a client for `node`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub node: NodeId,
    pub request: RequestId,
    pub req: Request,
}

/// What the simulator must do after a client event: send at most one
/// request, and wake the client at `wake.0` with token `wake.1`.
#[derive(Debug, Default)]
pub struct Effects {
    pub send: Option<Outgoing>,
    pub wake: Option<(usize, u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    LinRead,
    SerRead,
}

#[derive(Debug, Clone)]
struct Pending {
    request: RequestId,
    node: NodeId,
    key: String,
    input: Input,
    kind: Kind,
    call_ns: u64,
}

#[derive(Debug)]
struct Client {
    /// The client id in the history; replaced after an unknown outcome.
    hist_id: u64,
    target: NodeId,
    pending: Option<Pending>,
    /// A request the replica refused without appending: sent again next.
    retry: Option<(String, Input, Kind)>,
    /// Only the newest scheduled wake counts; older ones are stale.
    wake_token: u64,
}

#[derive(Debug, Default, Clone)]
pub struct WorkloadStats {
    pub writes_ok: u64,
    pub reads_ok: u64,
    pub serializable_reads: u64,
    pub refused: u64,
    pub unknown: u64,
}

pub struct Workload {
    clients: Vec<Client>,
    pub history: Vec<Operation>,
    /// Which client owns each request still outstanding.
    requests: BTreeMap<RequestId, usize>,
    next_request: RequestId,
    next_hist_id: u64,
    next_value: i64,
    nodes: Vec<NodeId>,
    keys: Vec<String>,
    params: WorkloadParams,
    stopped: bool,
    rng: Rng,
    pub stats: WorkloadStats,
}

impl Workload {
    pub fn new(params: WorkloadParams, nodes: Vec<NodeId>, mut rng: Rng) -> Self {
        let keys = (0..params.keys).map(|k| format!("k{k}")).collect();
        let clients = (0..params.clients)
            .map(|i| Client { hist_id: i as u64, target: *rng.pick(&nodes), pending: None, retry: None, wake_token: 0 })
            .collect();
        Workload {
            next_hist_id: params.clients as u64,
            clients,
            history: Vec::new(),
            requests: BTreeMap::new(),
            next_request: 1,
            next_value: 1,
            nodes,
            keys,
            params,
            stopped: false,
            rng,
            stats: WorkloadStats::default(),
        }
    }

    /// First wake of every client, spread over the first think time.
    pub fn start(&mut self, now_ns: u64) -> Vec<Effects> {
        (0..self.clients.len())
            .map(|c| {
                let at = now_ns + self.rng.range(0, self.params.think_max_ns);
                Effects { send: None, wake: Some(self.schedule(c, at)) }
            })
            .collect()
    }

    /// No new ops from now on; outstanding ones still resolve.
    pub fn stop(&mut self) {
        self.stopped = true;
        for c in &mut self.clients {
            c.retry = None;
        }
    }

    pub fn outstanding(&self) -> usize {
        self.clients.iter().filter(|c| c.pending.is_some()).count()
    }

    /// Request ids are also handed out for scripted requests, so that they
    /// never collide with the clients' ones.
    pub fn new_request_id(&mut self) -> RequestId {
        let r = self.next_request;
        self.next_request += 1;
        r
    }

    fn schedule(&mut self, client: usize, at_ns: u64) -> (usize, u64, u64) {
        let c = &mut self.clients[client];
        c.wake_token += 1;
        (client, at_ns, c.wake_token)
    }

    pub fn wake(&mut self, client: usize, token: u64, now_ns: u64) -> Effects {
        if self.clients[client].wake_token != token {
            return Effects::default();
        }
        if self.clients[client].pending.is_some() {
            // The only wake scheduled while a request is outstanding is its
            // timeout.
            self.give_up(client);
            return self.idle(client, now_ns);
        }
        if self.stopped {
            return Effects::default();
        }
        if let Some(&(_, end)) = self.params.pauses.iter().find(|(start, end)| (*start..*end).contains(&now_ns)) {
            let at = end + self.rng.range(0, self.params.think_max_ns);
            return Effects { send: None, wake: Some(self.schedule(client, at)) };
        }
        let (key, input, kind) = match self.clients[client].retry.take() {
            Some(r) => r,
            None => self.choose_op(),
        };
        // Now and then a client asks a random node, as behind a load
        // balancer: that is how a deposed leader still gets requests.
        if self.rng.chance_ppm(self.params.wander_ppm) {
            self.clients[client].target = *self.rng.pick(&self.nodes);
        }
        let request = self.new_request_id();
        let c = &mut self.clients[client];
        let node = c.target;
        let req = match (&kind, &input) {
            (Kind::Write, Input::Set(Value::Int(v))) => Request::Propose(Cmd::set_i64(key.clone(), *v)),
            (Kind::Write, Input::Set(Value::Str(s))) => Request::Propose(Cmd::set_str(key.clone(), s.clone())),
            (Kind::Write, Input::Del) => Request::Propose(Cmd::del(key.clone())),
            (Kind::Write, Input::Incr(d)) => Request::Propose(Cmd::incr(key.clone(), *d)),
            (Kind::LinRead, _) => Request::Read { key: key.clone(), consistency: ReadConsistency::Linearizable },
            (Kind::SerRead, _) => Request::Read { key: key.clone(), consistency: ReadConsistency::Serializable },
            (Kind::Write, Input::Get) => unreachable!("a write is never a Get"),
        };
        c.pending = Some(Pending { request, node, key, input, kind, call_ns: now_ns });
        self.requests.insert(request, client);
        let timeout_at = now_ns + self.params.timeout_ns;
        Effects { send: Some(Outgoing { node, request, req }), wake: Some(self.schedule(client, timeout_at)) }
    }

    fn choose_op(&mut self) -> (String, Input, Kind) {
        let key = self.rng.pick(&self.keys).clone();
        let roll = self.rng.below(100);
        let value = self.next_value;
        self.next_value += 1;
        match roll {
            // Unique values make a misplaced write stand out to the checker.
            0..=29 => (key, Input::Set(Value::Int(value)), Kind::Write),
            30..=34 => (key, Input::Set(Value::Str(format!("s{value}"))), Kind::Write),
            35..=59 => {
                let delta = self.rng.range_i64(-2, 5);
                (key, Input::Incr(delta), Kind::Write)
            }
            60..=66 => (key, Input::Del, Kind::Write),
            67..=92 => (key, Input::Get, Kind::LinRead),
            _ => (key, Input::Get, Kind::SerRead),
        }
    }

    fn idle(&mut self, client: usize, now_ns: u64) -> Effects {
        if self.stopped {
            return Effects::default();
        }
        let at = now_ns + self.rng.range(0, self.params.think_max_ns);
        Effects { send: None, wake: Some(self.schedule(client, at)) }
    }

    /// The outcome of the outstanding request is unknown.
    fn give_up(&mut self, client: usize) {
        let c = &mut self.clients[client];
        let p = c.pending.take().expect("give_up without a pending request");
        self.requests.remove(&p.request);
        c.target = *self.rng.pick(&self.nodes);
        if p.kind != Kind::Write {
            return;
        }
        self.stats.unknown += 1;
        self.history.push(Operation {
            client: c.hist_id,
            key: p.key,
            input: p.input,
            call: p.call_ns,
            ret: None,
            output: None,
        });
        // The unknown write may take effect after this client's next op, so
        // the next op must not be "sequential after" it under the same id.
        c.hist_id = self.next_hist_id;
        self.next_hist_id += 1;
    }

    /// A replica joined: clients may now be sent (or wander) to it.
    pub fn add_node(&mut self, node: NodeId) {
        if !self.nodes.contains(&node) {
            self.nodes.push(node);
        }
    }

    /// A replica was shut down for good: no client picks it again, the ones
    /// that used it move elsewhere, and a request it held is lost as in a
    /// crash.
    pub fn retire_node(&mut self, node: NodeId, now_ns: u64) -> Vec<Effects> {
        self.nodes.retain(|&n| n != node);
        assert!(!self.nodes.is_empty(), "membership plans never retire every replica");
        for c in 0..self.clients.len() {
            if self.clients[c].target == node {
                self.clients[c].target = *self.rng.pick(&self.nodes);
            }
        }
        self.on_crash(node, now_ns)
    }

    /// A node crashed: what it held is lost or not, nobody can tell.
    pub fn on_crash(&mut self, node: NodeId, now_ns: u64) -> Vec<Effects> {
        let hit: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.clients[c].pending.as_ref().is_some_and(|p| p.node == node))
            .collect();
        hit.into_iter()
            .map(|c| {
                self.give_up(c);
                self.idle(c, now_ns)
            })
            .collect()
    }

    /// A reply reached its client; `None` when the node was down (connection
    /// refused: the request never reached a replica).
    pub fn on_reply(&mut self, request: RequestId, reply: Option<ClientReply>, now_ns: u64) -> Result<Effects, String> {
        let Some(client) = self.requests.remove(&request) else {
            // Late reply to a request the client already gave up on.
            return Ok(Effects::default());
        };
        let c = &mut self.clients[client];
        let p = c.pending.take().expect("a request in the map is pending");
        let reply = match reply {
            Some(r) => r,
            None => {
                self.stats.refused += 1;
                self.refused(client, p, None);
                return Ok(self.backoff(client, now_ns));
            }
        };
        match reply {
            ClientReply::Failed(TraftError::NotLeader { leader, .. }) => {
                self.stats.refused += 1;
                self.refused(client, p, leader.map(|l| l.id));
                Ok(self.backoff(client, now_ns))
            }
            ClientReply::Failed(TraftError::NoLeader) => {
                self.stats.refused += 1;
                self.refused(client, p, None);
                Ok(self.backoff(client, now_ns))
            }
            ClientReply::Failed(_) => {
                // Leadership lost, timeout, or anything else: unknown.
                self.clients[client].pending = Some(p);
                self.give_up(client);
                Ok(self.idle(client, now_ns))
            }
            ClientReply::Proposed { result, .. } => {
                let output = match (&p.kind, &p.input, result) {
                    (Kind::Write, Input::Incr(_), ApplyResult::Incremented(v)) => Output::Incr(Some(v)),
                    (Kind::Write, Input::Incr(_), ApplyResult::NotAnInteger) => Output::IncrNotInteger,
                    (Kind::Write, Input::Incr(_), ApplyResult::Overridden) => Output::Incr(None),
                    (Kind::Write, Input::Set(_) | Input::Del, ApplyResult::Done | ApplyResult::Overridden) => {
                        Output::Done
                    }
                    (_, input, result) => {
                        return Err(format!(
                            "request {request} ({input:?} on {}) answered with a proposal result {result:?} of \
                             the wrong kind",
                            p.key
                        ));
                    }
                };
                self.stats.writes_ok += 1;
                self.record(client, p, output, now_ns);
                Ok(self.idle(client, now_ns))
            }
            ClientReply::Transferred { .. } => {
                Err(format!("request {request} ({:?} on {}) answered with a leadership transfer", p.input, p.key))
            }
            ClientReply::Read { value } => {
                if p.kind == Kind::Write {
                    return Err(format!("write request {request} ({:?} on {}) answered with a read", p.input, p.key));
                }
                let value = match value {
                    None => None,
                    Some(PbValue::Vi64(v)) => Some(Value::Int(v)),
                    Some(PbValue::VStr(s)) => Some(Value::Str(s)),
                    Some(other) => return Err(format!("read of {} returned a non-key value {other:?}", p.key)),
                };
                if p.kind == Kind::LinRead {
                    self.stats.reads_ok += 1;
                    self.record(client, p, Output::Get(value), now_ns);
                } else {
                    // Serializable reads may be stale by design; they only
                    // exercise the path.
                    self.stats.serializable_reads += 1;
                }
                Ok(self.idle(client, now_ns))
            }
        }
    }

    fn record(&mut self, client: usize, p: Pending, output: Output, now_ns: u64) {
        self.history.push(Operation {
            client: self.clients[client].hist_id,
            key: p.key,
            input: p.input,
            call: p.call_ns,
            ret: Some(now_ns),
            output: Some(output),
        });
    }

    /// The replica did not take the request: redirect, and send it again as
    /// a new op (it has no trace in the history).
    fn refused(&mut self, client: usize, p: Pending, leader: Option<NodeId>) {
        let c = &mut self.clients[client];
        c.target = match leader {
            Some(l) if l != p.node && self.nodes.contains(&l) => l,
            _ => *self.rng.pick(&self.nodes),
        };
        if !self.stopped {
            c.retry = Some((p.key, p.input, p.kind));
        }
    }

    fn backoff(&mut self, client: usize, now_ns: u64) -> Effects {
        if self.stopped {
            return Effects::default();
        }
        // Short pause so a leaderless cluster is not flooded.
        let at = now_ns + self.rng.range(1_000_000, 30_000_000);
        Effects { send: None, wake: Some(self.schedule(client, at)) }
    }
}
