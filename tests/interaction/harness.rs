//! The interpreter behind the scripts in `tests/interaction/testdata/`. A
//! script is a list of blocks: one command line, a `----` line, and the
//! output that command must print, up to a blank line. Lines starting with
//! `#` between blocks are comments. `TRAFT_REWRITE=1 cargo test --test
//! interaction` rewrites every script's outputs with what the replicas do
//! now, so a behaviour change is reviewed as a diff of the scripts.
//!
//! The network is the same kind of place as the story harness's: no clock
//! of its own, messages delivered in order by `stabilize` or `run`. Writes,
//! however, stay pending until `persist` (or `stabilize`/`run`) makes them
//! durable, and a send or reply that waits on a write is held until then,
//! as the driver holds it. `crash` loses pending writes and held messages.
//!
//! Commands (ids are member ids; `*` matches any member in rules):
//!
//! - `add-nodes N [opt=V | opt@ID=V ...]`: members 1..=N of a majority
//!   configuration; options `jitter_ms`, `lease_ms`, `snapshot_every`,
//!   `compact_retain`, `floor_lag`, `window`, `batch`.
//! - `campaign ID`: campaign now instead of at the election timeout.
//! - `transfer ID [TO]`: ask leader ID to hand leadership to TO (or the
//!   most caught-up member); prints the request id.
//! - `propose ID WORDS...` / `read ID KEY`: a client request to ID; prints
//!   the request id. `repeat A..B COMMAND[; COMMAND...]` runs the commands
//!   with `{i}` replaced by each number, printing only the requests' range.
//! - `tick [MS]`: advance the clock and tick every member, delivering
//!   nothing. `run MS`: tick, persist and deliver in 10 ms steps, quietly;
//!   prints who leads.
//! - `persist ID`: make ID's pending writes durable. `deliver [FROM->TO]`:
//!   deliver the messages queued now (on one link). `stabilize`: persist and
//!   deliver until nothing is pending, advancing no clock.
//! - `drop FROM->TO [KIND] [key=K] [seq=S] [once]`: lose matching messages
//!   (for a forward, `key`/`seq` match one of its records); `strip FROM->TO
//!   [key=K] [seq=S]`: take matching records out of forwards; `heal`: clear
//!   every rule.
//! - `crash ID`, `restart ID [opt=V ...]`: stop a member with what it made
//!   durable; start it again from that.
//! - `ask-vote VOTER CANDIDATE TERM`: a vote request with an empty log,
//!   answered at once; prints the reply.
//! - `status [ID...]`, `log ID`, `kv ID`, `get ID KEY...`, `same-kv ID ID...`,
//!   `replies [A..B]`: what the members and clients know.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use traftctl::leader_id::short_opt;
use traftctl::pb::{ClusterConfig, Cmd, LeaderId, TailBitmap, VoteReq};
use traftctl::replica::{
    Action, ClientReply, DurableState, DurableWrite, Event, Message, NodeId, Options, ReadConsistency, Replica,
};

const MS: u64 = 1_000_000;
/// Script output shows every field whole.
const WHOLE: usize = usize::MAX;

struct Rule {
    from: Option<NodeId>,
    to: Option<NodeId>,
    kind: Option<String>,
    key: Option<String>,
    seq: Option<i64>,
    strip: bool,
    once: bool,
}

impl Rule {
    fn on_link(&self, from: NodeId, to: NodeId) -> bool {
        self.from.is_none_or(|f| f == from) && self.to.is_none_or(|t| t == to)
    }

    fn matches_record(&self, r: &traftctl::pb::Record) -> bool {
        self.key.as_ref().is_none_or(|k| r.cmd.as_ref().is_some_and(|c| &c.key == k))
            && self.seq.is_none_or(|s| r.seq == s)
    }

    /// Whether this drop rule takes `msg`.
    fn drops(&self, from: NodeId, to: NodeId, msg: &Message) -> bool {
        if self.strip || !self.on_link(from, to) || self.kind.as_ref().is_some_and(|k| k != kind(msg)) {
            return false;
        }
        if self.key.is_none() && self.seq.is_none() {
            return true;
        }
        matches!(msg, Message::Forward(f) if f.logs.iter().any(|r| self.matches_record(r)))
    }
}

fn kind(msg: &Message) -> &'static str {
    match msg {
        Message::Vote(_) => "Vote",
        Message::VoteReply(_) => "VoteReply",
        Message::Forward(_) => "Forward",
        Message::ForwardReply(_) => "ForwardReply",
        Message::SnapshotReq(_) => "SnapshotReq",
        Message::SnapshotChunk(_) => "SnapshotChunk",
    }
}

enum Held {
    Send { to: NodeId, msg: Message },
    Reply { request: u64, reply: ClientReply },
}

#[derive(Default)]
struct Member {
    opts: Option<Options>,
    disk: DurableState,
    pending: Vec<(u64, DurableWrite)>,
    /// Snapshots handed out to be saved; saved with the next `persist`.
    saves: Vec<u64>,
    held: Vec<(u64, Held)>,
    durable_id: u64,
}

#[derive(Default)]
pub struct Interaction {
    now: u64,
    config: Option<ClusterConfig>,
    replicas: BTreeMap<NodeId, Replica>,
    members: BTreeMap<NodeId, Member>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    rules: Vec<Rule>,
    replies: BTreeMap<u64, ClientReply>,
    next_request: u64,
    quiet: bool,
    out: String,
}

impl Interaction {
    /// Runs one command and returns what it printed.
    pub fn command(&mut self, line: &str) -> Result<String, String> {
        self.out.clear();
        let words: Vec<&str> = line.split_whitespace().collect();
        let (&name, args) = words.split_first().ok_or("empty command")?;
        match name {
            "add-nodes" => self.add_nodes(args)?,
            "campaign" => {
                let id = self.member(args.first())?;
                let now = self.now;
                let started = self.replica(id)?.campaign_now(now);
                if !started {
                    self.say(format!("{id} may not campaign now"));
                }
                self.collect(id);
            }
            "propose" => {
                let id = self.member(args.first())?;
                let cmd = Cmd::parse_words(&args[1..]).map_err(|e| format!("propose: {e}"))?;
                let request = self.request();
                self.say(format!("request {request}"));
                let now = self.now;
                self.replica(id)?.propose(now, request, cmd);
                self.collect(id);
            }
            "transfer" => {
                let id = self.member(args.first())?;
                let to = match args.get(1) {
                    Some(t) => Some(t.parse::<NodeId>().map_err(|_| format!("transfer: bad target `{t}`"))?),
                    None => None,
                };
                let request = self.request();
                self.say(format!("request {request}"));
                let now = self.now;
                self.replica(id)?.transfer_leadership(now, request, to);
                self.collect(id);
            }
            "read" => {
                let id = self.member(args.first())?;
                let key = args.get(1).ok_or("read ID KEY")?;
                let request = self.request();
                self.say(format!("request {request}"));
                let now = self.now;
                self.replica(id)?.read(now, request, key, ReadConsistency::Linearizable);
                self.collect(id);
            }
            "repeat" => self.repeat(args)?,
            "tick" => {
                let ms: u64 = args.first().map_or(Ok(0), |a| a.parse()).map_err(|e| format!("tick MS: {e}"))?;
                self.now += ms * MS;
                self.tick_all();
            }
            "run" => {
                let ms: u64 = args.first().ok_or("run MS")?.parse().map_err(|e| format!("run MS: {e}"))?;
                self.run(ms)?;
                let leader = self.replicas.values().find(|r| r.leader_ballot().is_some()).map(|r| r.id());
                self.say(match leader {
                    Some(id) => format!("leader {id}"),
                    None => "no leader".to_string(),
                });
            }
            "persist" => {
                let id = self.member(args.first())?;
                self.persist(id);
            }
            "deliver" => {
                let link = args.first().map(|a| parse_link(a)).transpose()?;
                self.deliver(link);
            }
            "stabilize" => self.stabilize()?,
            "drop" | "strip" => self.add_rule(name == "strip", args)?,
            "heal" => self.rules.clear(),
            "crash" => {
                let id = self.member(args.first())?;
                self.crash(id)?;
            }
            "restart" => {
                let id = self.member(args.first())?;
                self.restart(id, &args[1..])?;
            }
            "ask-vote" => self.ask_vote(args)?,
            "status" => self.status(args)?,
            "log" => {
                let id = self.member(args.first())?;
                let lines: Vec<String> = self
                    .replica(id)?
                    .log()
                    .values()
                    .map(|r| format!("{} depends {} overrides {}", r.short(), r.depends_bm(), r.overrides_bm()))
                    .collect();
                for l in lines {
                    self.say(l);
                }
            }
            "kv" => {
                let id = self.member(args.first())?;
                let kv = render_kv(self.replica(id)?);
                self.say(kv);
            }
            "get" => {
                let id = self.member(args.first())?;
                let replica = self.replica(id)?;
                let values: Vec<String> = args[1..]
                    .iter()
                    .map(|k| format!("{k}={}", replica.kv().get(k).map_or("(none)".to_string(), render_value)))
                    .collect();
                self.say(values.join(" "));
            }
            "same-kv" => {
                let ids: Vec<NodeId> = args.iter().map(|a| self.member(Some(a))).collect::<Result<_, _>>()?;
                let (first, rest) = ids.split_first().ok_or("same-kv ID ID...")?;
                let want = render_kv(self.replica(*first)?);
                for id in rest {
                    let have = render_kv(self.replica(*id)?);
                    let line = if have == want {
                        format!("{id} holds the same state as {first}")
                    } else {
                        format!("{id} differs from {first}: {have} vs {want}")
                    };
                    self.say(line);
                }
            }
            "replies" => {
                let (lo, hi) = match args.first() {
                    Some(range) => {
                        let bad = || format!("replies [A..B]: {range:?}");
                        let (a, b) = range.split_once("..").ok_or_else(bad)?;
                        (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
                    }
                    None => (0, u64::MAX),
                };
                let lines: Vec<String> = self
                    .replies
                    .range(lo..hi)
                    .map(|(request, reply)| format!("{request}: {}", render_reply(reply)))
                    .collect();
                for l in lines {
                    self.say(l);
                }
            }
            other => return Err(format!("unknown command {other:?}")),
        }
        if self.out.is_empty() {
            self.out.push_str("ok\n");
        }
        Ok(self.out.clone())
    }

    fn say(&mut self, line: impl AsRef<str>) {
        if !self.quiet {
            self.out.push_str(line.as_ref());
            self.out.push('\n');
        }
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn member(&self, arg: Option<&&str>) -> Result<NodeId, String> {
        let arg = arg.ok_or("a member id is required")?;
        arg.parse().map_err(|_| format!("{arg:?} is not a member id"))
    }

    fn replica(&mut self, id: NodeId) -> Result<&mut Replica, String> {
        self.replicas.get_mut(&id).ok_or(format!("member {id} is down"))
    }

    fn add_nodes(&mut self, args: &[&str]) -> Result<(), String> {
        let n: NodeId = args.first().ok_or("add-nodes N")?.parse().map_err(|e| format!("add-nodes N: {e}"))?;
        let ids: Vec<NodeId> = (1..=n).collect();
        let config = ClusterConfig::majority(ids.iter().map(|&id| (id, format!("127.0.0.1:{}", 7000 + id))))
            .map_err(|e| e.to_string())?;
        for &id in &ids {
            let mut opts = Options::new(id);
            for a in &args[1..] {
                set_option(&mut opts, id, a)?;
            }
            self.replicas.insert(id, Replica::new(opts.clone(), config.clone(), None, self.now));
            self.members.insert(id, Member { opts: Some(opts), ..Default::default() });
        }
        self.config = Some(config);
        let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        self.say(format!("members {}", list.join(" ")));
        Ok(())
    }

    fn repeat(&mut self, args: &[&str]) -> Result<(), String> {
        let (range, rest) = args.split_first().ok_or("repeat A..B COMMAND")?;
        let (a, b) = range.split_once("..").ok_or("repeat A..B COMMAND")?;
        let (a, b): (u64, u64) = (a.parse().map_err(|_| "repeat: A")?, b.parse().map_err(|_| "repeat: B")?);
        let template = rest.join(" ");
        let first = self.next_request + 1;
        let quiet = std::mem::replace(&mut self.quiet, true);
        let saved = std::mem::take(&mut self.out);
        for i in a..b {
            for command in template.split(';') {
                self.command(&command.replace("{i}", &i.to_string()))?;
            }
        }
        self.quiet = quiet;
        self.out = saved;
        if self.next_request >= first {
            self.say(format!("requests {first}..={}", self.next_request));
        }
        Ok(())
    }

    /// Takes `id`'s actions: writes wait for `persist`, sends and replies
    /// wait for the writes they depend on.
    fn collect(&mut self, id: NodeId) {
        let Some(replica) = self.replicas.get_mut(&id) else { return };
        let actions = replica.take_actions();
        for action in actions {
            match action {
                Action::Persist { id: pid, write } => {
                    self.say(format!("{id}: write {pid}: {}", write.describe(WHOLE)));
                    self.members.get_mut(&id).expect("a member").pending.push((pid, write));
                }
                Action::Send { to, msg, after_persist } => self.hold(id, after_persist, Held::Send { to, msg }),
                Action::Reply { request, reply, after_persist } => {
                    self.hold(id, after_persist, Held::Reply { request, reply })
                }
                Action::SaveSnapshot { id: save, snapshot } => {
                    self.say(format!("{id}: save snapshot {save}: prefix {}", snapshot.prefix()));
                    self.members.get_mut(&id).expect("a member").saves.push(save);
                }
                Action::Event(e) => {
                    let line = render_event(&e);
                    self.say(format!("{id}: {line}"));
                }
            }
        }
    }

    fn hold(&mut self, id: NodeId, after: u64, held: Held) {
        let member = self.members.get_mut(&id).expect("a member");
        if after > member.durable_id {
            member.held.push((after, held));
        } else {
            self.release(id, held);
        }
    }

    fn release(&mut self, id: NodeId, held: Held) {
        match held {
            Held::Send { to, msg } => self.queue.push_back((id, to, msg)),
            Held::Reply { request, reply } => {
                self.say(format!("{id}: reply {request}: {}", render_reply(&reply)));
                self.replies.insert(request, reply);
            }
        }
    }

    fn persist(&mut self, id: NodeId) {
        let Some(member) = self.members.get_mut(&id) else { return };
        let saves = std::mem::take(&mut member.saves);
        let now = self.now;
        for save in saves {
            self.say(format!("{id}: snapshot {save} saved"));
            if let Some(r) = self.replicas.get_mut(&id) {
                r.snapshot_saved(now, save);
            }
        }
        let Some(member) = self.members.get_mut(&id) else { return };
        let Some(&(last, _)) = member.pending.last() else {
            self.collect(id);
            return;
        };
        for (_, write) in member.pending.drain(..) {
            member.disk.apply(write);
        }
        member.durable_id = last;
        let (ready, waiting): (Vec<_>, Vec<_>) = member.held.drain(..).partition(|(after, _)| *after <= last);
        member.held = waiting;
        self.say(format!("{id}: durable {last}"));
        for (_, held) in ready {
            self.release(id, held);
        }
        let now = self.now;
        if let Some(r) = self.replicas.get_mut(&id) {
            r.persisted(now, last);
        }
        self.collect(id);
    }

    /// Delivers the messages queued now (on `link` only, if given); what
    /// they cause is queued behind them.
    fn deliver(&mut self, link: Option<(Option<NodeId>, Option<NodeId>)>) {
        let queued = std::mem::take(&mut self.queue);
        let mut later = VecDeque::new();
        for (from, to, mut msg) in queued {
            if link.is_some_and(|(f, t)| f.is_some_and(|f| f != from) || t.is_some_and(|t| t != to)) {
                later.push_back((from, to, msg));
                continue;
            }
            self.deliver_one(from, to, &mut msg);
        }
        later.extend(std::mem::take(&mut self.queue));
        self.queue = later;
    }

    fn deliver_one(&mut self, from: NodeId, to: NodeId, msg: &mut Message) {
        if let Some(i) = self.rules.iter().position(|r| r.drops(from, to, msg)) {
            self.say(format!("{from}->{to} dropped {}", msg.describe(WHOLE)));
            if self.rules[i].once {
                self.rules.remove(i);
            }
            return;
        }
        if let Message::Forward(f) = msg {
            for rule in self.rules.iter().filter(|r| r.strip && r.on_link(from, to)) {
                f.logs.retain(|r| !rule.matches_record(r));
            }
        }
        if !self.replicas.contains_key(&to) {
            self.say(format!("{from}->{to} lost, {to} is down: {}", msg.describe(WHOLE)));
            return;
        }
        self.say(format!("{from}->{to} {}", msg.describe(WHOLE)));
        let now = self.now;
        self.replicas.get_mut(&to).expect("checked").step(now, from, msg.clone());
        self.collect(to);
    }

    fn stabilize(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            let pending: Vec<NodeId> = self
                .members
                .iter()
                .filter(|(_, m)| !m.pending.is_empty() || !m.saves.is_empty())
                .map(|(id, _)| *id)
                .collect();
            if pending.is_empty() && self.queue.is_empty() {
                return Ok(());
            }
            for id in pending {
                self.persist(id);
            }
            self.deliver(None);
        }
        Err("stabilize: still busy after 10,000 rounds (a message storm)".to_string())
    }

    fn tick_all(&mut self) {
        let ids: Vec<NodeId> = self.replicas.keys().copied().collect();
        let now = self.now;
        for id in ids {
            self.replicas.get_mut(&id).expect("listed").tick(now);
            self.collect(id);
        }
    }

    fn run(&mut self, ms: u64) -> Result<(), String> {
        let quiet = std::mem::replace(&mut self.quiet, true);
        let end = self.now + ms * MS;
        let mut result = Ok(());
        while self.now < end && result.is_ok() {
            self.tick_all();
            result = self.stabilize();
            self.now += 10 * MS;
        }
        self.quiet = quiet;
        result
    }

    fn add_rule(&mut self, strip: bool, args: &[&str]) -> Result<(), String> {
        let (from, to) = parse_link(args.first().ok_or("drop FROM->TO ...")?)?;
        let mut rule = Rule { from, to, kind: None, key: None, seq: None, strip, once: false };
        for a in &args[1..] {
            match a.split_once('=') {
                Some(("key", k)) => rule.key = Some(k.to_string()),
                Some(("seq", s)) => rule.seq = Some(s.parse().map_err(|_| format!("seq={s:?}"))?),
                None if *a == "once" => rule.once = true,
                None if !strip => rule.kind = Some(a.to_string()),
                _ => return Err(format!("{a:?}: expected a message kind, key=K, seq=S or once")),
            }
        }
        self.rules.push(rule);
        Ok(())
    }

    fn crash(&mut self, id: NodeId) -> Result<(), String> {
        self.replicas.remove(&id).ok_or(format!("member {id} is already down"))?;
        let member = self.members.get_mut(&id).expect("a member");
        let lost = member.pending.len();
        member.pending.clear();
        member.held.clear();
        self.queue.retain(|(from, _, _)| *from != id);
        self.say(format!("{id} crashed, {lost} pending writes lost"));
        Ok(())
    }

    fn restart(&mut self, id: NodeId, args: &[&str]) -> Result<(), String> {
        if self.replicas.contains_key(&id) {
            return Err(format!("member {id} is up"));
        }
        let member = self.members.get_mut(&id).ok_or(format!("no member {id}"))?;
        let mut opts = member.opts.clone().expect("added with options");
        for a in args {
            set_option(&mut opts, id, a)?;
        }
        member.opts = Some(opts.clone());
        member.durable_id = 0;
        let disk = member.disk.clone();
        let config = self.config.clone().expect("members were added");
        self.replicas.insert(id, Replica::new(opts, config, Some(disk), self.now));
        self.say(format!("{id} restarted"));
        self.collect(id);
        Ok(())
    }

    fn ask_vote(&mut self, args: &[&str]) -> Result<(), String> {
        let usage = "ask-vote VOTER CANDIDATE TERM";
        let nums: Vec<i64> = args.iter().map(|a| a.parse().map_err(|_| usage.to_string())).collect::<Result<_, _>>()?;
        let [voter, candidate, term] = nums[..] else { return Err(usage.to_string()) };
        let ballot = LeaderId::new(term, candidate);
        let req = VoteReq {
            candidate: Some(ballot),
            committer: None,
            accepted: Some(TailBitmap::empty()),
            ..Default::default()
        };
        let now = self.now;
        let replica = self.replica(voter)?;
        replica.step(now, candidate, Message::Vote(req));
        let reply = replica.take_actions().into_iter().find_map(|a| match a {
            Action::Send { msg: msg @ Message::VoteReply(_), .. } => Some(msg),
            _ => None,
        });
        match reply {
            Some(Message::VoteReply(r)) => {
                let refusal = if r.granted { String::new() } else { format!(" refusal={:?}", r.refusal()) };
                let line = format!("{}{refusal}", Message::VoteReply(r).describe(WHOLE));
                self.say(line);
            }
            _ => self.say("no reply"),
        }
        Ok(())
    }

    fn status(&mut self, args: &[&str]) -> Result<(), String> {
        let ids: Vec<NodeId> = if args.is_empty() {
            self.members.keys().copied().collect()
        } else {
            args.iter().map(|a| self.member(Some(a))).collect::<Result<_, _>>()?
        };
        for id in ids {
            let line = match self.replicas.get(&id) {
                None => format!("{id} down"),
                Some(r) => {
                    let mut line = format!(
                        "{id} {:?} voted={} committer={} accepted={} committed={} applied={}",
                        r.role(),
                        short_opt(&r.voted_for()),
                        short_opt(&r.committer()),
                        r.accepted(),
                        r.committed(),
                        r.applied()
                    );
                    if r.compacted_below() > 0 {
                        let _ = write!(line, " compacted_below={}", r.compacted_below());
                    }
                    if r.stats().snapshots_installed > 0 {
                        let _ = write!(line, " snapshots_installed={}", r.stats().snapshots_installed);
                    }
                    line
                }
            };
            self.say(line);
        }
        Ok(())
    }
}

fn parse_link(arg: &str) -> Result<(Option<NodeId>, Option<NodeId>), String> {
    let (from, to) = arg.split_once("->").ok_or(format!("{arg:?}: expected FROM->TO"))?;
    let end = |s: &str| match s {
        "*" => Ok(None),
        s => s.parse().map(Some).map_err(|_| format!("{s:?} in {arg:?} is not a member id or *")),
    };
    Ok((end(from)?, end(to)?))
}

/// `opt=V` for every member, `opt@ID=V` for one.
fn set_option(opts: &mut Options, id: NodeId, arg: &str) -> Result<(), String> {
    let (name, value) = arg.split_once('=').ok_or(format!("{arg:?}: expected opt=V"))?;
    let (name, only) = match name.split_once('@') {
        Some((n, who)) => (n, Some(who.parse::<NodeId>().map_err(|_| format!("{arg:?}: bad member id"))?)),
        None => (name, None),
    };
    if only.is_some_and(|who| who != id) {
        return Ok(());
    }
    let v: u64 = value.parse().map_err(|_| format!("{arg:?}: expected a number"))?;
    match name {
        "jitter_ms" => opts.election_jitter_ns = v * MS,
        "lease_ms" => opts.lease_ns = v * MS,
        "snapshot_every" => opts.snapshot_every = v as _,
        "compact_retain" => opts.compact_retain = v as _,
        "floor_lag" => opts.floor_lag = v as _,
        "window" => opts.window = v as _,
        "batch" => opts.max_batch_records = v as _,
        other => return Err(format!("unknown option {other:?}")),
    }
    Ok(())
}

fn render_kv(r: &Replica) -> String {
    let entries: Vec<String> = r.kv().iter().map(|(k, v)| format!("{k}={}", render_value(v))).collect();
    if entries.is_empty() { "(empty)".to_string() } else { entries.join(" ") }
}

fn render_value(v: &traftctl::pb::cmd::Value) -> String {
    use traftctl::pb::cmd::Value;
    match v {
        Value::Vi64(n) => n.to_string(),
        Value::VStr(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

fn render_reply(reply: &ClientReply) -> String {
    match reply {
        ClientReply::Proposed { seq, leader, result } => {
            format!("committed seq {seq} by {} {result:?}", leader.short())
        }
        ClientReply::Read { value: Some(v) } => format!("read {}", render_value(v)),
        ClientReply::Read { value: None } => "read (none)".to_string(),
        ClientReply::Transferred { to, from } => format!("handed over from {} to {to}", from.short()),
        ClientReply::Failed(e) => format!("failed: {e}"),
    }
}

fn render_event(e: &Event) -> String {
    match e {
        Event::VoteStart { candidate } => format!("campaigns as {}", candidate.short()),
        Event::VoteWin { leader, base_len } => format!("leads as {} with base_len {base_len}", leader.short()),
        Event::VoteFail { candidate, reason } => format!("lost as {}: {reason}", candidate.short()),
        Event::LeaderChange { leader } => format!("leader is {}", leader.short()),
        Event::Committed { seq } => format!("committed {seq}"),
        Event::Applied { seq, result } => format!("applied {seq}: {result:?}"),
        Event::ConfigChange { seq, config } => format!("config at {seq}: {config}"),
        Event::SnapshotInstalled { from, prefix } => format!("installed {from}'s snapshot, prefix {prefix}"),
        Event::Compacted { below } => format!("compacted below {below}"),
    }
}
