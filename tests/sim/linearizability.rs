//! Linearizability checker for histories of the key-value state machine.
//!
//! The protocol simulator records every client operation (call time, return
//! time, input, output) and calls [`check`] at the end of each seeded run.
//!
//! # Semantics of a history
//!
//! Per key the state is `Option<Value>`, initially `None`:
//!
//! * `Set(v)`: state becomes `Some(v)`, output `Done`;
//! * `Del`: state becomes `None`, output `Done`;
//! * `Incr(d)`: an absent key counts as `Int(0)`; `Int(x)` becomes
//!   `Int(x.wrapping_add(d))` with output `Incr(Some(x + d))`; a `Str` is left
//!   alone with output `IncrNotInteger`;
//! * `Get`: output `Get(state)`.
//!
//! An operation takes effect atomically at one instant between its call and
//! its return. Operation `a` *precedes* `b` when `a.ret <= b.call`: a return
//! and a call at the same tick are ordered, return first, so only strictly
//! overlapping intervals are concurrent.
//!
//! Outcomes the client could not observe:
//!
//! * `ret: None, output: None`: the client gave up (timeout, "leadership
//!   lost") after the request may have been sent. The operation may take
//!   effect at any instant after `call`, including after later operations of
//!   the same client, or never. Its return is treated as +infinity, as
//!   Porcupine does: taking effect after everything else is the same as never.
//! * `ret: Some(_), output: Some(Output::Incr(None))`: the increment is
//!   acknowledged, so it took effect within `[call, ret]` and the key held an
//!   integer (or nothing); only the resulting value is unknown. On a key
//!   holding a `Str` it does not fit: that incr would have been answered
//!   `IncrNotInteger`.
//!
//! Any other combination is a bug in whoever built the history, not in the
//! system under test, so [`check`] panics on it (see its `# Panics`).
//!
//! # Algorithm
//!
//! Linearizability is local (Herlihy & Wing), so the history is split by key
//! and each key is checked on its own ("P-compositionality").
//!
//! Per key this is Wing & Gong's depth-first search as refined by Lowe
//! ("just-in-time linearization") and implemented by Porcupine: the calls and
//! returns are a time-ordered doubly linked list; the ops that may be
//! linearized next are the calls in front of the first return still in the
//! list; applying one to the model unlinks its call and return, and
//! backtracking relinks them (dancing links). A memo of visited (linearized
//! set as a bitset, model state) pairs stops the search from exploring the
//! same subproblem twice. On top of that, each cut keeping one of several
//! equivalent orders (details on `Search::run`):
//!
//! * A `Get` (or an incr answered `IncrNotInteger`) does not change the
//!   state, so one that fits is linearized at once, no alternative tried.
//! * Ops with an unknown outcome are tried after the known ones, and the memo
//!   cuts a node when it has seen one with the same known ops and state and a
//!   *subset* of its unknown ops: leaving unknown ops out is always allowed.
//! * Unknown ops are applied only in runs that end right before a known op
//!   which reads the state they produce (a run followed by a `Set`/`Del`, or
//!   by nothing, is equivalent to no run), in a canonical order, and a run is
//!   abandoned as soon as no pending known op can accept where it leads.
//!   Without this, every pending timed-out op would multiply the search by
//!   two at every node, for ever.
//! * Of pending unknown ops with the same input, only the earliest unapplied
//!   one is tried: k timed-out `Incr(1)`s cost k + 1 cases, not 2^k.
//! * A `Get` whose outcome is unknown cannot matter and is dropped up front.
//!
//! The unit tests check the verdicts against a plain memoised Wing & Gong
//! search on thousands of small random histories, most of them with many
//! unknown outcomes.
//!
//! # Cost and the step budget
//!
//! A step is one attempt to apply an op to the model; one costs 100-400 ns
//! (optimised build). A linearizable history of 2000 ops by 8 clients takes
//! ~10k steps (about a millisecond) when every outcome is known, and up to a
//! few hundred thousand when 5-20% of the ops time out. Proving a violation
//! means exhausting every reachable (set, state) pair up to it: tens of
//! thousands of steps with known outcomes, but often more than the default
//! budget when many ops time out and values repeat. The budget turns that
//! into [`CheckResult::GaveUp`] instead of a hang. The memo grows by about
//! 160 bytes for every ~5 steps: [`DEFAULT_STEP_BUDGET`] bounds a key at
//! about 2 s and 200 MB.
//!
//! Cheap histories to check use distinct values for writes and few distinct
//! incr deltas, and keep timed-out operations rare.
//!
//! `GaveUp` means "not proven either way". The simulator must treat it as a
//! failure to investigate (rerun the seed with a larger budget, or shrink the
//! run), never as a pass.

// Two test binaries include this file and each uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    Str(String),
}

#[derive(Clone, Debug)]
pub enum Input {
    Set(Value),
    Del,
    Incr(i64),
    Get,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// `Set` / `Del` acknowledged.
    Done,
    /// `Some(v)`: value after the increment; `None`: acknowledged, value not
    /// known.
    Incr(Option<i64>),
    /// Incr on a key holding a `Str`: state unchanged.
    IncrNotInteger,
    /// Value read (`None` = absent).
    Get(Option<Value>),
}

/// One client request as the client saw it.
#[derive(Clone, Debug)]
pub struct Operation {
    pub client: u64,
    pub key: String,
    pub input: Input,
    pub call: u64,
    /// `None`: outcome unknown (then `output` is `None` too).
    pub ret: Option<u64>,
    pub output: Option<Output>,
}

/// Several times what the linearizable histories of 2000 ops per key in the
/// tests need, even with 20% of them timing out; about 2 s and 200 MB at
/// most (see the module docs).
pub const DEFAULT_STEP_BUDGET: u64 = 5_000_000;

#[derive(Clone, Debug)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Ok,
    /// This key's history is not linearizable.
    Violation(Violation),
    /// The search on `key` took more than the budget: nothing was proven.
    /// Treat it as a failure to investigate, never as a pass.
    GaveUp { key: String, steps: u64 },
}

impl CheckResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }
}

/// Why a key's history is not linearizable, as far as the search got.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: String,
    /// The longest linearization found of a prefix of the history (by number
    /// of ops with a known outcome), in linearization order. Ops with an
    /// unknown outcome appear where the search assumed they took effect.
    pub prefix: Vec<Operation>,
    /// The state after `prefix`.
    pub state: Option<Value>,
    /// The pending ops that could have come next after `prefix`; none of them
    /// leads to a complete linearization.
    pub unplaced: Vec<Unplaced>,
    /// The pending op with the earliest return: no op called after that
    /// return may be linearized before it, which is why the ops in `unplaced`
    /// are the only candidates.
    pub blocked_by: Option<Operation>,
}

#[derive(Clone, Debug)]
pub struct Unplaced {
    pub op: Operation,
    /// What the model answers to `op.input` in `Violation::state`.
    pub model_output: Output,
}

/// How many prefix and unplaced ops `Display` shows, so that a long history
/// or many timed-out ops do not drown the point; the struct has them all.
const SHOWN_OPS: usize = 20;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "history of key {:?} is not linearizable", self.key)?;
        let skipped = self.prefix.len().saturating_sub(SHOWN_OPS);
        write!(f, "longest linearizable prefix found: {} ops", self.prefix.len())?;
        if skipped > 0 {
            write!(f, " (first {skipped} not shown)")?;
        }
        writeln!(f, ", in linearization order:")?;
        for op in &self.prefix[skipped..] {
            writeln!(f, "  {op}")?;
        }
        writeln!(f, "state after it: {:?}", self.state)?;
        writeln!(f, "pending ops, none of which can come next (model output in this state on the right):")?;
        for u in self.unplaced.iter().take(SHOWN_OPS) {
            writeln!(f, "  {}    model: {:?}", u.op, u.model_output)?;
        }
        if self.unplaced.len() > SHOWN_OPS {
            writeln!(f, "  ... and {} more", self.unplaced.len() - SHOWN_OPS)?;
        }
        if let Some(op) = &self.blocked_by {
            let ret = op.ret.map_or_else(|| "?".to_string(), |t| t.to_string());
            writeln!(f, "(client {}'s op must take effect by t={ret}, so no later call can come first)", op.client)?;
        }
        Ok(())
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Ok => write!(f, "linearizable"),
            CheckResult::Violation(v) => write!(f, "{v}"),
            CheckResult::GaveUp { key, steps } => {
                write!(f, "gave up on key {key:?} after {steps} search steps: linearizability not decided")
            }
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} [{}..", self.client, self.call)?;
        match self.ret {
            Some(t) => write!(f, "{t}]")?,
            None => write!(f, "?]")?,
        }
        write!(f, " {:?} -> ", self.input)?;
        match &self.output {
            Some(o) => write!(f, "{o:?}"),
            None => write!(f, "? (outcome unknown)"),
        }
    }
}

/// The key-value state machine, for explanations and for building expected
/// histories.
pub fn model_step(state: &Option<Value>, input: &Input) -> (Option<Value>, Output) {
    match input {
        Input::Set(v) => (Some(v.clone()), Output::Done),
        Input::Del => (None, Output::Done),
        Input::Incr(d) => match state {
            None => (Some(Value::Int(*d)), Output::Incr(Some(*d))),
            Some(Value::Int(x)) => {
                let y = x.wrapping_add(*d);
                (Some(Value::Int(y)), Output::Incr(Some(y)))
            }
            Some(Value::Str(_)) => (state.clone(), Output::IncrNotInteger),
        },
        Input::Get => (state.clone(), Output::Get(state.clone())),
    }
}

/// Checks every key of `history` on its own, in key order, spending at most
/// `step_budget_per_key` steps on each.
///
/// A `Violation` is reported in preference to a `GaveUp` on another key,
/// since it is definite.
///
/// # Panics
///
/// On a malformed history: `call >= ret`; a returned op without an output, or
/// an op with unknown outcome with one; an output of the wrong kind for the
/// input (`Set`/`Del` -> `Done`, `Incr` -> `Incr` or `IncrNotInteger`, `Get`
/// -> `Get`); two ops of one client overlapping, unless the earlier one's
/// outcome is unknown.
pub fn check(history: &[Operation], step_budget_per_key: u64) -> CheckResult {
    validate(history);
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut gave_up = None;
    for (key, ops) in by_key {
        match check_validated(key, &ops, step_budget_per_key) {
            CheckResult::Ok => {}
            v @ CheckResult::Violation(_) => return v,
            g @ CheckResult::GaveUp { .. } => {
                gave_up.get_or_insert(g);
            }
        }
    }
    gave_up.unwrap_or(CheckResult::Ok)
}

/// [`check`] for a history of a single key.
///
/// # Panics
///
/// As [`check`], and if the ops are not all on one key.
pub fn check_key(ops: &[Operation], step_budget: u64) -> CheckResult {
    validate(ops);
    let Some(first) = ops.first() else {
        return CheckResult::Ok;
    };
    assert!(ops.iter().all(|op| op.key == first.key), "check_key: ops on more than one key");
    let refs: Vec<&Operation> = ops.iter().collect();
    check_validated(&first.key, &refs, step_budget)
}

fn validate(history: &[Operation]) {
    for op in history {
        match (op.ret, &op.output) {
            (Some(ret), Some(out)) => {
                assert!(op.call < ret, "malformed history: call must be before return: {op}");
                let fits = matches!(
                    (&op.input, out),
                    (Input::Set(_) | Input::Del, Output::Done)
                        | (Input::Incr(_), Output::Incr(_) | Output::IncrNotInteger)
                        | (Input::Get, Output::Get(_))
                );
                assert!(fits, "malformed history: output of the wrong kind for the input: {op}");
            }
            (None, None) => {}
            (Some(_), None) => panic!(
                "malformed history: a returned op needs an output \
                 (Output::Incr(None) for an acknowledged incr of unknown value): {op}"
            ),
            (None, Some(_)) => {
                panic!("malformed history: an op with unknown outcome has an output: {op}")
            }
        }
    }
    let mut by_client: Vec<&Operation> = history.iter().collect();
    by_client.sort_by_key(|op| (op.client, op.call));
    for pair in by_client.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.client == b.client
            && let Some(ret) = a.ret
        {
            assert!(ret <= b.call, "malformed history: ops of one client overlap:\n  {a}\n  {b}");
        }
    }
}

fn check_validated(key: &str, ops: &[&Operation], budget: u64) -> CheckResult {
    let compiled = Compiled::new(ops);
    let mut search = Search::new(&compiled);
    match search.run(budget) {
        Outcome::Linearizable => CheckResult::Ok,
        Outcome::GaveUp(steps) => CheckResult::GaveUp { key: key.to_string(), steps },
        Outcome::NotLinearizable(d) => CheckResult::Violation(compiled.explain(key, &d)),
    }
}

/// The model state with strings interned, so that it is `Copy` and hashes
/// and compares in constant time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum State {
    Absent,
    Int(i64),
    Str(u32),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum In {
    Set(State),
    Del,
    Incr(i64),
    Get,
}

#[derive(Clone, Copy)]
enum Out {
    Done,
    Incr(Option<i64>),
    NotInt,
    Get(State),
    Unknown,
}

/// The state after applying `input` to `state`, if the model can answer
/// `output` there.
fn step(state: State, input: In, output: Out) -> Option<State> {
    match input {
        In::Set(v) => matches!(output, Out::Done | Out::Unknown).then_some(v),
        In::Del => matches!(output, Out::Done | Out::Unknown).then_some(State::Absent),
        In::Incr(d) => {
            let x = match state {
                State::Absent => 0,
                State::Int(x) => x,
                State::Str(_) => {
                    return matches!(output, Out::NotInt | Out::Unknown).then_some(state);
                }
            };
            let y = x.wrapping_add(d);
            match output {
                Out::Incr(None) | Out::Unknown => Some(State::Int(y)),
                Out::Incr(Some(v)) if v == y => Some(State::Int(y)),
                _ => None,
            }
        }
        In::Get => match output {
            Out::Get(v) if v == state => Some(state),
            Out::Unknown => Some(state),
            _ => None,
        },
    }
}

struct Op<'a> {
    src: &'a Operation,
    input: In,
    output: Out,
    /// The op leaves the state unchanged wherever its output fits.
    pure: bool,
    /// The resulting state does not depend on the state before.
    blind: bool,
    /// An acknowledged incr of unknown value: fits any integer.
    wild: bool,
    /// For an op with unknown outcome: the previous such op with the same
    /// input, or `NO_OP`.
    twin: u32,
}

const NO_OP: u32 = u32::MAX;

/// One key's history in search form: ops with a known outcome are numbered
/// `0..known` in call order, those with an unknown outcome come after.
struct Compiled<'a> {
    ops: Vec<Op<'a>>,
    known: usize,
    strs: Vec<&'a str>,
}

impl<'a> Compiled<'a> {
    fn new(history: &[&'a Operation]) -> Self {
        let mut ordered: Vec<&'a Operation> =
            history.iter().copied().filter(|op| op.ret.is_some() || !matches!(op.input, Input::Get)).collect();
        // Stable sort: ties keep history order, so results are reproducible.
        ordered.sort_by_key(|op| (op.ret.is_none(), op.call));
        let known = ordered.iter().filter(|op| op.ret.is_some()).count();

        let mut interned: HashMap<&'a str, u32> = HashMap::new();
        let mut strs: Vec<&'a str> = Vec::new();
        let mut state_of = |v: Option<&'a Value>| match v {
            None => State::Absent,
            Some(Value::Int(x)) => State::Int(*x),
            Some(Value::Str(s)) => State::Str(*interned.entry(s).or_insert_with(|| {
                strs.push(s);
                (strs.len() - 1) as u32
            })),
        };
        let mut last_twin: HashMap<In, u32> = HashMap::new();
        let ops = ordered
            .into_iter()
            .enumerate()
            .map(|(i, src)| {
                let input = match &src.input {
                    Input::Set(v) => In::Set(state_of(Some(v))),
                    Input::Del => In::Del,
                    Input::Incr(d) => In::Incr(*d),
                    Input::Get => In::Get,
                };
                let output = match &src.output {
                    None => Out::Unknown,
                    Some(Output::Done) => Out::Done,
                    Some(Output::Incr(v)) => Out::Incr(*v),
                    Some(Output::IncrNotInteger) => Out::NotInt,
                    Some(Output::Get(v)) => Out::Get(state_of(v.as_ref())),
                };
                let twin = if src.ret.is_none() { last_twin.insert(input, i as u32).unwrap_or(NO_OP) } else { NO_OP };
                Op {
                    src,
                    input,
                    output,
                    pure: matches!(output, Out::Get(_) | Out::NotInt),
                    blind: matches!(input, In::Set(_) | In::Del),
                    wild: matches!(output, Out::Incr(None)),
                    twin,
                }
            })
            .collect();
        Compiled { ops, known, strs }
    }

    fn value(&self, s: State) -> Option<Value> {
        match s {
            State::Absent => None,
            State::Int(x) => Some(Value::Int(x)),
            State::Str(i) => Some(Value::Str(self.strs[i as usize].to_string())),
        }
    }

    fn explain(&self, key: &str, d: &Deepest) -> Violation {
        let state = self.value(d.state);
        let unplaced = d
            .candidates
            .iter()
            .map(|&i| {
                let op = self.ops[i as usize].src.clone();
                let model_output = model_step(&state, &op.input).1;
                Unplaced { op, model_output }
            })
            .collect();
        Violation {
            key: key.to_string(),
            prefix: d.path.iter().map(|&i| self.ops[i as usize].src.clone()).collect(),
            state,
            unplaced,
            blocked_by: d.blocked_by.map(|i| self.ops[i as usize].src.clone()),
        }
    }
}

enum Outcome {
    Linearizable,
    NotLinearizable(Deepest),
    GaveUp(u64),
}

/// The failed search node with the most known ops linearized.
struct Deepest {
    depth: usize,
    path: Vec<u32>,
    state: State,
    candidates: Vec<u32>,
    blocked_by: Option<u32>,
}

const KNOWN_PASS: u8 = 0;
const UNKNOWN_PASS: u8 = 1;
/// Marks a frame whose op was linearized without alternatives.
const FORCED: u8 = 2;

struct Frame {
    op: u32,
    /// The op's call node, where the walk over its siblings resumes.
    node: u32,
    pass: u8,
    prev: State,
    /// The context of the node this op leads to.
    ctx: Ctx,
}

/// Where a node stands in a run of ops with unknown outcome, which limits
/// what may follow it (see `Search::run`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ctx {
    level: u8,
    /// The op that entered the run's current node.
    last: u32,
}

/// Not in a run: anything may follow.
const FREE: Ctx = Ctx { level: 0, last: 0 };
/// After a run made of one unknown `Set`/`Del`.
const IN_WRITE_RUN: u8 = 1;
/// After a run that includes an unknown `Incr`: only later incrs may extend
/// it.
const IN_INCR_RUN: u8 = 2;

impl Ctx {
    /// Whether a node in `self` may do next everything that a node in
    /// `other` may, so that the first covers the second in the memo.
    fn allows_all_of(self, other: Ctx) -> bool {
        match self.level {
            0 => true,
            IN_WRITE_RUN => other.level != 0,
            _ => other.level == IN_INCR_RUN && self.last <= other.last,
        }
    }
}

/// The range of the sums of some subset of a set of incr deltas.
#[derive(Clone, Copy, Default)]
struct Sums {
    lo: i128,
    hi: i128,
}

impl Sums {
    fn add(&mut self, d: i64, sign: i128) {
        if d < 0 {
            self.lo += sign * i128::from(d);
        } else {
            self.hi += sign * i128::from(d);
        }
    }

    /// Whether incrs from `from` may end at `to`. Incrs wrap, so that is
    /// some sum in range congruent to the distance modulo 2^64.
    fn may_reach(self, from: i64, to: i64) -> bool {
        let distance = i128::from(to) - i128::from(from);
        self.lo + (distance - self.lo).rem_euclid(1 << 64) <= self.hi
    }
}

const KNOWN_HEAD: usize = 0;

struct Search<'c, 'a> {
    c: &'c Compiled<'a>,
    /// Two doubly linked lists over one numbering of the events: node `k`
    /// for `1 <= k <= m` is the k-th call or return in time order, so nodes
    /// compare as their times do. The known list runs from `KNOWN_HEAD`
    /// through the calls and returns of ops with a known outcome to `m + 1`;
    /// the unknown list from `m + 2` through the calls of the others to
    /// `m + 3`. Those ops' returns are at +infinity and left out.
    next: Vec<u32>,
    prev: Vec<u32>,
    node_op: Vec<u32>,
    /// Return nodes and the known list's tail: a walk over candidates stops
    /// there.
    stop: Vec<bool>,
    unknown_head: usize,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
    known_bits: Vec<u64>,
    unknown_bits: Vec<u64>,
    /// Zobrist hashes of `known_bits` and `unknown_bits`, kept up to date
    /// incrementally.
    known_hash: u64,
    unknown_hash: u64,
    zobrist: Vec<u64>,
    memo: Memo,
    steps: u64,
    /// Scratch for `unknown_pass_setup`: the pending known ops whose output
    /// depends on the state.
    observers: Vec<u32>,
}

impl<'c, 'a> Search<'c, 'a> {
    fn new(c: &'c Compiled<'a>) -> Self {
        let n = c.ops.len();
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
        for (i, op) in c.ops.iter().enumerate() {
            // At equal times the return sorts first: `a.ret <= b.call` means
            // a precedes b.
            events.push((op.src.call, 1, i as u32));
            if let Some(ret) = op.src.ret {
                events.push((ret, 0, i as u32));
            }
        }
        events.sort_unstable();
        let m = events.len();
        let (known_tail, unknown_head, unknown_tail) = (m + 1, m + 2, m + 3);
        let mut next = vec![0u32; m + 4];
        let mut prev = vec![0u32; m + 4];
        let mut node_op = vec![u32::MAX; m + 4];
        let mut stop = vec![false; m + 4];
        stop[known_tail] = true;
        let mut call_node = vec![u32::MAX; n];
        let mut ret_node = vec![u32::MAX; n];
        let (mut known_last, mut unknown_last) = (KNOWN_HEAD, unknown_head);
        let mut append = |last: &mut usize, node: usize| {
            next[*last] = node as u32;
            prev[node] = *last as u32;
            *last = node;
        };
        for (k, &(_, kind, i)) in events.iter().enumerate() {
            let node = k + 1;
            node_op[node] = i;
            if kind == 0 {
                stop[node] = true;
                ret_node[i as usize] = node as u32;
            } else {
                call_node[i as usize] = node as u32;
            }
            if (i as usize) < c.known {
                append(&mut known_last, node);
            } else {
                append(&mut unknown_last, node);
            }
        }
        append(&mut known_last, known_tail);
        append(&mut unknown_last, unknown_tail);
        Search {
            c,
            next,
            prev,
            node_op,
            stop,
            unknown_head,
            call_node,
            ret_node,
            known_bits: vec![0; c.known.div_ceil(64)],
            unknown_bits: vec![0; (n - c.known).div_ceil(64)],
            known_hash: 0,
            unknown_hash: 0,
            zobrist: (0..n as u64).map(|i| mix(i ^ 0x5EED)).collect(),
            memo: Memo::default(),
            steps: 0,
            observers: Vec::new(),
        }
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Valid only in the reverse order of the `unlink`s.
    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        self.prev[n as usize] = node;
    }

    fn lift(&mut self, op: u32) {
        let i = op as usize;
        self.unlink(self.call_node[i]);
        if i < self.c.known {
            self.unlink(self.ret_node[i]);
            self.known_bits[i / 64] |= 1 << (i % 64);
            self.known_hash ^= self.zobrist[i];
        } else {
            let u = i - self.c.known;
            self.unknown_bits[u / 64] |= 1 << (u % 64);
            self.unknown_hash ^= self.zobrist[i];
        }
    }

    fn unlift(&mut self, op: u32) {
        let i = op as usize;
        if i < self.c.known {
            self.relink(self.ret_node[i]);
            self.known_bits[i / 64] &= !(1 << (i % 64));
            self.known_hash ^= self.zobrist[i];
        } else {
            let u = i - self.c.known;
            self.unknown_bits[u / 64] &= !(1 << (u % 64));
            self.unknown_hash ^= self.zobrist[i];
        }
        self.relink(self.call_node[i]);
    }

    fn applied(&self, op: u32) -> bool {
        let u = op as usize - self.c.known;
        self.unknown_bits[u / 64] & (1 << (u % 64)) != 0
    }

    /// Records the current linearized set with `state`; true if it is covered
    /// by a node already visited.
    fn seen(&mut self, state: State, ctx: Ctx) -> bool {
        self.memo.covered_or_insert(&MemoKey {
            state,
            ctx,
            known_hash: self.known_hash,
            unknown_hash: self.unknown_hash,
            known: &self.known_bits,
            unknown: &self.unknown_bits,
        })
    }

    /// The earliest pending return: only calls before it may come next.
    fn first_stop(&self) -> usize {
        let mut node = self.next[KNOWN_HEAD] as usize;
        while !self.stop[node] {
            node = self.next[node] as usize;
        }
        node
    }

    /// A pending op that leaves the state unchanged and fits it.
    fn placeable_pure(&self, state: State) -> Option<(u32, u32)> {
        let mut node = self.next[KNOWN_HEAD] as usize;
        while !self.stop[node] {
            let op = self.node_op[node];
            let o = &self.c.ops[op as usize];
            if o.pure && step(state, o.input, o.output).is_some() {
                return Some((op, node as u32));
            }
            node = self.next[node] as usize;
        }
        None
    }

    /// Prepares the walk over the unknown ops that may come next, starting
    /// at `from`: fills `observers` and returns the node bounding the walk,
    /// the sums of all the pending unknown incrs, and of those from `from`
    /// on.
    fn unknown_pass_setup(&mut self, from: usize) -> (usize, Sums, Sums) {
        self.observers.clear();
        let mut node = self.next[KNOWN_HEAD] as usize;
        while !self.stop[node] {
            let op = self.node_op[node];
            if !self.c.ops[op as usize].blind {
                self.observers.push(op);
            }
            node = self.next[node] as usize;
        }
        let bound = node;
        let (mut all, mut rest) = (Sums::default(), Sums::default());
        let mut node = self.next[self.unknown_head] as usize;
        while node < bound {
            if let In::Incr(d) = self.c.ops[self.node_op[node] as usize].input {
                all.add(d, 1);
                if node >= from {
                    rest.add(d, 1);
                }
            }
            node = self.next[node] as usize;
        }
        (bound, all, rest)
    }

    /// Whether a run of unknown ops that has reached `s`, in context `ctx`
    /// and free to take more incrs with sums in `more`, can still end right
    /// before a pending known op that fits, as a run worth trying must.
    fn useful(&self, s: State, ctx: Ctx, more: Sums) -> bool {
        let base = match s {
            State::Absent => Some(0),
            State::Int(x) => Some(x),
            State::Str(_) => None,
        };
        self.observers.iter().any(|&op| {
            let o = &self.c.ops[op as usize];
            if (ctx.level != IN_INCR_RUN || !o.wild) && step(s, o.input, o.output).is_some() {
                return true;
            }
            let target = match (o.input, o.output) {
                (In::Get, Out::Get(State::Int(t))) => Some(t),
                (In::Incr(d), Out::Incr(Some(y))) => Some(y.wrapping_sub(d)),
                _ => None,
            };
            matches!((base, target), (Some(x), Some(t)) if more.may_reach(x, t))
        })
    }

    fn deepest(&self, depth: usize, path: &[Frame], state: State) -> Deepest {
        let mut candidates = Vec::new();
        let mut node = self.next[KNOWN_HEAD] as usize;
        while !self.stop[node] {
            candidates.push(self.node_op[node]);
            node = self.next[node] as usize;
        }
        let bound = node;
        let mut node = self.next[self.unknown_head] as usize;
        while node < bound {
            candidates.push(self.node_op[node]);
            node = self.next[node] as usize;
        }
        Deepest {
            depth,
            path: path.iter().map(|f| f.op).collect(),
            state,
            candidates,
            // The known list's tail has no op: nothing blocks.
            blocked_by: (self.node_op[bound] != u32::MAX).then(|| self.node_op[bound]),
        }
    }

    /// The depth-first search. A node is the set of ops linearized so far
    /// (with the model state they lead to); its children are the pending ops
    /// that fit. Besides the memo, the following keep it small, each by
    /// trying only one of several orders that are equivalent:
    ///
    /// * A pending pure op that fits is linearized at once (`FORCED`):
    ///   nothing pending precedes it and it changes nothing, so it can move
    ///   to the front of any completion.
    /// * Known ops are tried first (`KNOWN_PASS`), then unknown ones, so the
    ///   memo records nodes with fewer unknown ops first and those cover the
    ///   rest.
    /// * Unknown ops are applied in *runs*: consecutive unknown ops that
    ///   end right before a known op whose output depends on the state. Any
    ///   linearization can be rearranged into such runs: a run followed by a
    ///   `Set`/`Del` or by nothing can be dropped; incrs commute, including
    ///   past an acknowledged incr of unknown value. So a run is at most one
    ///   unknown `Set`/`Del` followed by unknown incrs in op order, never
    ///   followed by a known `Set`/`Del` (nor, once it has an incr, by an
    ///   incr of unknown value), and it is cut as soon as it can no longer
    ///   reach a state that a pending known op accepts.
    /// * Of pending unknown ops with the same input, the earliest unapplied
    ///   one is used first.
    ///
    /// A node in a run is explored with those limits (its `Ctx`), so in the
    /// memo it covers only nodes no less limited.
    fn run(&mut self, budget: u64) -> Outcome {
        let known = self.c.known;
        let mut state = State::Absent;
        let mut known_left = known;
        let mut path: Vec<Frame> = Vec::new();
        let mut deepest: Option<Deepest> = None;
        self.seen(state, FREE);
        // Where to continue the walk over the current node's candidates after
        // a child failed; `None` for a node entered afresh.
        let mut resume: Option<(u8, u32)> = None;
        'node: loop {
            if known_left == 0 {
                return Outcome::Linearizable;
            }
            let ctx = path.last().map_or(FREE, |f| f.ctx);
            'expand: {
                let (pass, mut node) = match resume.take() {
                    Some((pass, node)) => (pass, node as usize),
                    None => {
                        if let Some((op, node)) = self.placeable_pure(state) {
                            self.steps += 1;
                            if self.steps > budget {
                                return Outcome::GaveUp(self.steps);
                            }
                            self.lift(op);
                            if self.seen(state, FREE) {
                                self.unlift(op);
                                break 'expand;
                            }
                            known_left -= 1;
                            path.push(Frame { op, node, pass: FORCED, prev: state, ctx: FREE });
                            continue 'node;
                        }
                        (KNOWN_PASS, self.next[KNOWN_HEAD] as usize)
                    }
                };
                if pass == KNOWN_PASS {
                    while !self.stop[node] {
                        let op = self.node_op[node];
                        let o = &self.c.ops[op as usize];
                        // In a run, a known write would erase the run, and an incr of
                        // unknown value would commute with the run's incrs.
                        if !o.pure && (ctx.level == 0 || !(o.blind || ctx.level == IN_INCR_RUN && o.wild)) {
                            self.steps += 1;
                            if self.steps > budget {
                                return Outcome::GaveUp(self.steps);
                            }
                            if let Some(next) = step(state, o.input, o.output) {
                                self.lift(op);
                                if !self.seen(next, FREE) {
                                    known_left -= 1;
                                    path.push(Frame { op, node: node as u32, pass, prev: state, ctx: FREE });
                                    state = next;
                                    continue 'node;
                                }
                                self.unlift(op);
                            }
                        }
                        node = self.next[node] as usize;
                    }
                    node = if ctx.level == IN_INCR_RUN {
                        // The run's last op was lifted just before this node
                        // was entered, so its link still leads to the next
                        // unknown op after it.
                        self.next[self.call_node[ctx.last as usize] as usize] as usize
                    } else {
                        self.next[self.unknown_head] as usize
                    };
                }
                let (bound, all, mut rest) = self.unknown_pass_setup(node);
                while node < bound {
                    let op = self.node_op[node];
                    let o = &self.c.ops[op as usize];
                    if let In::Incr(d) = o.input {
                        rest.add(d, -1);
                    }
                    if (o.twin == NO_OP || self.applied(o.twin)) && (ctx.level == 0 || !o.blind) {
                        self.steps += 1;
                        if self.steps > budget {
                            return Outcome::GaveUp(self.steps);
                        }
                        // An unknown op that changes nothing is covered by
                        // this very node.
                        if let Some(next) = step(state, o.input, o.output)
                            && next != state
                        {
                            let (child, more) = if o.blind {
                                (Ctx { level: IN_WRITE_RUN, last: op }, all)
                            } else {
                                (Ctx { level: IN_INCR_RUN, last: op }, rest)
                            };
                            if self.useful(next, child, more) {
                                self.lift(op);
                                if !self.seen(next, child) {
                                    path.push(Frame {
                                        op,
                                        node: node as u32,
                                        pass: UNKNOWN_PASS,
                                        prev: state,
                                        ctx: child,
                                    });
                                    state = next;
                                    continue 'node;
                                }
                                self.unlift(op);
                            }
                        }
                    }
                    node = self.next[node] as usize;
                }
            }
            // No child of this node leads to a linearization.
            let depth = known - known_left;
            if deepest.as_ref().is_none_or(|d| depth > d.depth) {
                deepest = Some(self.deepest(depth, &path, state));
            }
            loop {
                let Some(f) = path.pop() else {
                    let d = deepest.expect("recorded when the root failed");
                    return Outcome::NotLinearizable(d);
                };
                self.unlift(f.op);
                state = f.prev;
                if (f.op as usize) < known {
                    known_left += 1;
                }
                // A forced op was its parent's only child, so the parent
                // failed too.
                if f.pass != FORCED {
                    resume = Some((f.pass, self.next[f.node as usize]));
                    continue 'node;
                }
            }
        }
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finalizer: full avalanche, so XOR-combined keys hash well.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn state_hash(s: State) -> u64 {
    match s {
        State::Absent => 0x0123_4567_89AB_CDEF,
        State::Int(x) => mix(x as u64 ^ 0xA5A5_A5A5_0000_0001),
        State::Str(i) => mix(u64::from(i) ^ 0x5A5A_5A5A_0000_0002),
    }
}

/// The memo keys are already mixed; hashing them again would only cost time.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

const NO_ENTRY: u32 = u32::MAX;

/// How many of the latest nodes with the same known set and state a lookup
/// checks for one that covers the new node with fewer unknown ops. A
/// missed cover costs search steps, not correctness, and scanning them all
/// would cost time quadratic in the number of steps.
const COVER_SCAN: usize = 16;

/// The search node being looked up.
struct MemoKey<'k> {
    state: State,
    ctx: Ctx,
    known_hash: u64,
    unknown_hash: u64,
    known: &'k [u64],
    unknown: &'k [u64],
}

/// Visited search nodes, chained twice: per hash of (known set, state) for
/// covering lookups, and per hash of the whole node for exact ones.
#[derive(Default)]
struct Memo {
    by_known: HashMap<u64, u32, BuildHasherDefault<PreHashed>>,
    exact: HashMap<u64, u32, BuildHasherDefault<PreHashed>>,
    entries: Vec<MemoEntry>,
    /// Each entry's known-set window then its unknown set, back to back.
    words: Vec<u64>,
}

/// The known set is stored as its count of leading all-ones words and the
/// words from there to the last nonzero one, the unknown set without its
/// trailing zero words: canonical forms, so equal sets have equal
/// encodings, as small as the pending window.
struct MemoEntry {
    state: State,
    ctx: Ctx,
    next_by_known: u32,
    next_exact: u32,
    lo: u32,
    off: usize,
    known_len: u32,
    unknown_len: u32,
}

fn ctx_hash(ctx: Ctx) -> u64 {
    if ctx == FREE { 0 } else { mix((u64::from(ctx.level) << 32) | u64::from(ctx.last)) }
}

impl Memo {
    fn stored(&self, e: &MemoEntry) -> (&[u64], &[u64]) {
        let off = e.off;
        let split = off + e.known_len as usize;
        (&self.words[off..split], &self.words[split..split + e.unknown_len as usize])
    }

    fn has_exact(&self, hash: u64, state: State, ctx: Ctx, lo: usize, known: &[u64], unknown: &[u64]) -> bool {
        let mut i = self.exact.get(&hash).copied().unwrap_or(NO_ENTRY);
        while i != NO_ENTRY {
            let e = &self.entries[i as usize];
            if e.state == state && e.ctx == ctx && e.lo as usize == lo && self.stored(e) == (known, unknown) {
                return true;
            }
            i = e.next_exact;
        }
        false
    }

    /// Whether a visited node covers `k`: same known set and state, a subset
    /// of its unknown ops, and a context allowing all that `k`'s does. If
    /// not, records `k`.
    fn covered_or_insert(&mut self, k: &MemoKey) -> bool {
        let lo = k.known.iter().position(|&w| w != !0).unwrap_or(k.known.len());
        let hi = k.known.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1).max(lo);
        let known = &k.known[lo..hi];
        let unknown = &k.unknown[..k.unknown.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1)];
        let by_known = mix(k.known_hash ^ state_hash(k.state));
        let exact = mix(by_known ^ k.unknown_hash ^ ctx_hash(k.ctx));
        if self.has_exact(exact, k.state, k.ctx, lo, known, unknown) {
            return true;
        }
        if k.ctx != FREE && self.has_exact(mix(by_known ^ k.unknown_hash), k.state, FREE, lo, known, unknown) {
            return true;
        }
        let head = self.by_known.get(&by_known).copied().unwrap_or(NO_ENTRY);
        let mut i = head;
        for _ in 0..COVER_SCAN {
            if i == NO_ENTRY {
                break;
            }
            let e = &self.entries[i as usize];
            if e.state == k.state && e.ctx.allows_all_of(k.ctx) && e.lo as usize == lo {
                let (stored_known, stored_unknown) = self.stored(e);
                // The stored unknown set's last word is nonzero, so being no
                // longer than ours is necessary for it to be a subset.
                if stored_known == known
                    && stored_unknown.len() <= unknown.len()
                    && stored_unknown.iter().zip(unknown).all(|(s, c)| s & !c == 0)
                {
                    return true;
                }
            }
            i = e.next_by_known;
        }
        let off = self.words.len();
        self.words.extend_from_slice(known);
        self.words.extend_from_slice(unknown);
        let index = self.entries.len() as u32;
        self.entries.push(MemoEntry {
            state: k.state,
            ctx: k.ctx,
            next_by_known: head,
            next_exact: self.exact.get(&exact).copied().unwrap_or(NO_ENTRY),
            lo: lo as u32,
            off,
            known_len: known.len() as u32,
            unknown_len: unknown.len() as u32,
        });
        self.by_known.insert(by_known, index);
        self.exact.insert(exact, index);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Instant;

    const BUDGET: u64 = 2_000_000;

    fn int(x: i64) -> Value {
        Value::Int(x)
    }

    fn string(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    fn done(client: u64, key: &str, input: Input, call: u64, ret: u64, out: Output) -> Operation {
        Operation { client, key: key.to_string(), input, call, ret: Some(ret), output: Some(out) }
    }

    fn pending(client: u64, key: &str, input: Input, call: u64) -> Operation {
        Operation { client, key: key.to_string(), input, call, ret: None, output: None }
    }

    fn set(client: u64, v: Value, call: u64, ret: u64) -> Operation {
        done(client, "k", Input::Set(v), call, ret, Output::Done)
    }

    fn del(client: u64, call: u64, ret: u64) -> Operation {
        done(client, "k", Input::Del, call, ret, Output::Done)
    }

    fn get(client: u64, call: u64, ret: u64, v: Option<Value>) -> Operation {
        done(client, "k", Input::Get, call, ret, Output::Get(v))
    }

    fn incr(client: u64, d: i64, call: u64, ret: u64, out: Output) -> Operation {
        done(client, "k", Input::Incr(d), call, ret, out)
    }

    fn assert_ok(h: &[Operation]) {
        match check(h, BUDGET) {
            CheckResult::Ok => {}
            other => panic!("expected Ok, got:\n{other}"),
        }
    }

    fn assert_violation(h: &[Operation]) -> Violation {
        match check(h, BUDGET) {
            CheckResult::Violation(v) => v,
            other => panic!("expected a violation, got: {other}"),
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_ok(&[]);
        assert!(check_key(&[], 0).is_ok());
    }

    #[test]
    fn sequential_good_history() {
        assert_ok(&[
            get(1, 0, 1, None),
            set(1, int(1), 2, 3),
            get(2, 4, 5, Some(int(1))),
            incr(3, 5, 6, 7, Output::Incr(Some(6))),
            get(1, 8, 9, Some(int(6))),
            set(2, string("x"), 10, 11),
            get(3, 12, 13, Some(string("x"))),
            del(1, 14, 15),
            get(2, 16, 17, None),
            incr(3, -2, 18, 19, Output::Incr(Some(-2))),
        ]);
    }

    #[test]
    fn concurrent_get_may_see_either_value() {
        for seen in [1, 2] {
            assert_ok(&[set(1, int(1), 0, 10), set(1, int(2), 20, 40), get(2, 25, 35, Some(int(seen)))]);
        }
        assert_violation(&[set(1, int(1), 0, 10), set(1, int(2), 20, 40), get(2, 25, 35, None)]);
    }

    #[test]
    fn stale_read_after_completed_write_is_a_violation() {
        assert_violation(&[set(1, int(1), 0, 10), set(1, int(2), 20, 30), get(2, 40, 50, Some(int(1)))]);
        assert_ok(&[set(1, int(1), 0, 10), set(1, int(2), 20, 30), get(2, 40, 50, Some(int(2)))]);
    }

    #[test]
    fn return_at_the_same_tick_as_a_call_precedes_it() {
        assert_violation(&[set(1, int(1), 0, 10), get(2, 10, 20, None)]);
        assert_ok(&[set(1, int(1), 0, 10), get(2, 9, 20, None)]);
    }

    #[test]
    fn concurrent_incrs_must_not_both_see_the_same_value() {
        for (a, b) in [(1, 2), (2, 1)] {
            assert_ok(&[incr(1, 1, 0, 10, Output::Incr(Some(a))), incr(2, 1, 5, 15, Output::Incr(Some(b)))]);
        }
        assert_violation(&[incr(1, 1, 0, 10, Output::Incr(Some(1))), incr(2, 1, 5, 15, Output::Incr(Some(1)))]);
        // Sequential incrs cannot be reordered.
        assert_violation(&[incr(1, 1, 0, 10, Output::Incr(Some(2))), incr(2, 1, 20, 30, Output::Incr(Some(1)))]);
    }

    #[test]
    fn incr_wraps() {
        assert_ok(&[set(1, int(i64::MAX), 0, 1), incr(1, 1, 2, 3, Output::Incr(Some(i64::MIN)))]);
    }

    #[test]
    fn incr_wraps_through_an_unknown_outcome() {
        let h = |out| {
            vec![
                set(1, int(i64::MAX - 1), 0, 10),
                pending(2, "k", Input::Incr(5), 5),
                incr(3, 1, 20, 30, Output::Incr(Some(out))),
            ]
        };
        assert_ok(&h(i64::MIN + 4));
        assert_ok(&h(i64::MAX));
        assert_violation(&h(i64::MIN + 5));
        assert_violation(&h(i64::MIN + 3));
    }

    #[test]
    fn acknowledged_incr_with_unknown_value() {
        assert_ok(&[set(1, int(1), 0, 10), incr(2, 5, 20, 30, Output::Incr(None)), get(3, 40, 50, Some(int(6)))]);
        // It did take effect, within its interval.
        assert_violation(&[
            set(1, int(1), 0, 10),
            incr(2, 5, 20, 30, Output::Incr(None)),
            get(3, 40, 50, Some(int(1))),
        ]);
        // On a string the answer would have been IncrNotInteger.
        assert_violation(&[set(1, string("s"), 0, 10), incr(2, 5, 20, 30, Output::Incr(None))]);
        // Concurrent with a known incr: either order fits 1 + 5 + 1.
        assert_ok(&[
            incr(1, 5, 0, 30, Output::Incr(None)),
            incr(2, 1, 10, 20, Output::Incr(Some(1))),
            get(3, 40, 50, Some(int(6))),
        ]);
    }

    #[test]
    fn unknown_outcome_that_happened() {
        assert_ok(&[
            set(1, int(1), 0, 10),
            pending(2, "k", Input::Set(int(2)), 20),
            get(3, 30, 40, Some(int(2))),
            get(3, 50, 60, Some(int(2))),
        ]);
        // It can take effect long after the client gave up and moved on.
        assert_ok(&[
            set(1, int(1), 0, 10),
            pending(2, "k", Input::Set(int(2)), 20),
            get(2, 30, 40, Some(int(1))),
            get(3, 100, 110, Some(int(2))),
        ]);
        assert_ok(&[pending(1, "k", Input::Incr(1), 0), incr(2, 1, 10, 20, Output::Incr(Some(2)))]);
    }

    #[test]
    fn unknown_outcome_that_did_not_happen() {
        assert_ok(&[set(1, int(1), 0, 10), pending(2, "k", Input::Set(int(2)), 20), get(3, 30, 40, Some(int(1)))]);
        assert_ok(&[pending(1, "k", Input::Incr(1), 0), incr(2, 1, 10, 20, Output::Incr(Some(1)))]);
        assert_ok(&[pending(1, "k", Input::Del, 0)]);
    }

    #[test]
    fn unknown_outcome_cannot_be_undone_or_act_before_its_call() {
        assert_violation(&[
            set(1, int(1), 0, 10),
            pending(2, "k", Input::Set(int(2)), 20),
            get(3, 30, 40, Some(int(2))),
            get(3, 50, 60, Some(int(1))),
        ]);
        assert_violation(&[
            set(1, int(1), 0, 10),
            get(3, 12, 15, Some(int(2))),
            pending(2, "k", Input::Set(int(2)), 20),
        ]);
        assert_violation(&[pending(1, "k", Input::Incr(1), 0), incr(2, 1, 10, 20, Output::Incr(Some(3)))]);
        // An unknown-outcome op happens at most once.
        assert_violation(&[
            pending(1, "k", Input::Incr(1), 0),
            get(2, 10, 20, Some(int(1))),
            get(2, 30, 40, Some(int(2))),
        ]);
    }

    #[test]
    fn get_of_a_value_never_written_is_a_violation() {
        let v = assert_violation(&[set(1, int(1), 0, 10), set(2, int(2), 5, 15), get(3, 20, 30, Some(int(7)))]);
        assert_eq!(v.key, "k");
        assert_violation(&[get(1, 0, 10, Some(int(0)))]);
    }

    #[test]
    fn read_cannot_go_back_in_time() {
        // Both writes complete before either read.
        assert_violation(&[
            set(1, int(1), 0, 10),
            set(1, int(2), 20, 30),
            get(2, 40, 50, Some(int(2))),
            get(2, 60, 70, Some(int(1))),
        ]);
        // Each read alone fits, but not both in this order.
        let h = |first, second| {
            vec![
                set(1, int(1), 0, 10),
                set(1, int(2), 20, 60),
                get(2, 25, 30, Some(int(first))),
                get(2, 35, 40, Some(int(second))),
            ]
        };
        assert_violation(&h(2, 1));
        assert_ok(&h(1, 2));
        assert_ok(&h(1, 1));
        assert_ok(&h(2, 2));
    }

    #[test]
    fn del_removes_the_key() {
        assert_ok(&[set(1, int(1), 0, 10), del(2, 20, 30), get(3, 40, 50, None)]);
        assert_violation(&[set(1, int(1), 0, 10), del(2, 20, 30), get(3, 40, 50, Some(int(1)))]);
    }

    #[test]
    fn keys_are_checked_independently() {
        let on = |key: &str, op: Operation| Operation { key: key.to_string(), ..op };
        let good = vec![
            on("a", set(1, int(1), 0, 10)),
            on("b", set(2, int(5), 2, 12)),
            on("a", get(3, 11, 20, Some(int(1)))),
            on("b", incr(1, 1, 15, 25, Output::Incr(Some(6)))),
            on("b", get(2, 30, 40, Some(int(6)))),
            // Would be a stale read if the keys were one register.
            on("a", get(3, 30, 40, Some(int(1)))),
        ];
        assert_ok(&good);
        let mut bad = good.clone();
        bad.push(on("b", get(4, 50, 60, Some(int(5)))));
        let v = assert_violation(&bad);
        assert_eq!(v.key, "b");
    }

    #[test]
    fn incr_not_integer() {
        assert_ok(&[
            set(1, string("x"), 0, 10),
            incr(2, 1, 20, 30, Output::IncrNotInteger),
            get(3, 40, 50, Some(string("x"))),
        ]);
        assert_violation(&[set(1, int(3), 0, 10), incr(2, 1, 20, 30, Output::IncrNotInteger)]);
        assert_violation(&[incr(2, 1, 20, 30, Output::IncrNotInteger)]);
        assert_violation(&[set(1, string("x"), 0, 10), incr(2, 1, 20, 30, Output::Incr(Some(1)))]);
        // Concurrent with the write of the string: both orders are possible.
        for (out, after) in [(Output::IncrNotInteger, string("x")), (Output::Incr(Some(1)), string("x"))] {
            assert_ok(&[set(1, string("x"), 0, 30), incr(2, 1, 10, 20, out), get(3, 40, 50, Some(after))]);
        }
        // The string stays: a later read of 1 means the incr did not see it.
        assert_violation(&[
            set(1, string("x"), 0, 30),
            incr(2, 1, 10, 20, Output::IncrNotInteger),
            get(3, 40, 50, Some(int(1))),
        ]);
    }

    #[test]
    fn violation_explains_itself() {
        let v = assert_violation(&[set(1, int(1), 0, 10), set(1, int(2), 20, 30), get(2, 40, 50, Some(int(1)))]);
        assert_eq!(v.prefix.len(), 2);
        assert_eq!(v.state, Some(int(2)));
        assert_eq!(v.unplaced.len(), 1);
        assert_eq!(v.unplaced[0].model_output, Output::Get(Some(int(2))));
        let text = v.to_string();
        eprintln!("{text}");
        assert!(text.contains("\"k\""), "{text}");
        assert!(text.contains("client 2 [40..50] Get -> Get(Some(Int(1)))"), "{text}");
        assert!(text.contains("client 1 [20..30] Set(Int(2)) -> Done"), "{text}");
    }

    #[test]
    #[should_panic(expected = "needs an output")]
    fn returned_op_without_output_is_malformed() {
        let mut op = set(1, int(1), 0, 10);
        op.output = None;
        check(&[op], BUDGET);
    }

    #[test]
    #[should_panic(expected = "wrong kind")]
    fn output_of_wrong_kind_is_malformed() {
        check(&[done(1, "k", Input::Get, 0, 10, Output::Done)], BUDGET);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_ops_of_one_client_are_malformed() {
        check(&[set(1, int(1), 0, 10), get(1, 5, 15, None)], BUDGET);
    }

    #[test]
    #[should_panic(expected = "before return")]
    fn return_not_after_call_is_malformed() {
        check(&[set(1, int(1), 10, 10)], BUDGET);
    }

    /// xorshift64*: deterministic and dependency-free.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(mix(seed) | 1)
        }
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    #[derive(Clone, Copy)]
    struct Shape {
        ops: usize,
        clients: u64,
        keys: &'static [&'static str],
        /// Max distance of call and return from the true linearization point.
        window: u64,
        unknown_percent: u64,
        /// Ints written are drawn from `0..values`.
        values: u64,
        /// Incr deltas are mostly drawn from `1..=deltas`.
        deltas: u64,
        incr_percent: u64,
        /// Share of acknowledged incrs whose value the client does not learn.
        incr_none_percent: u64,
    }

    const SMALL: Shape = Shape {
        ops: 12,
        clients: 3,
        keys: &["k"],
        window: 20,
        unknown_percent: 20,
        values: 3,
        deltas: 1,
        incr_percent: 25,
        incr_none_percent: 5,
    };

    fn random_input(rng: &mut Rng, s: &Shape) -> Input {
        if rng.chance(s.incr_percent) {
            let d = s.deltas;
            let delta = if rng.chance(80) { 1 + rng.below(d) as i64 } else { rng.below(2 * d + 1) as i64 - d as i64 };
            return Input::Incr(delta);
        }
        match rng.below(20) {
            0..=6 => Input::Set(int(rng.below(s.values) as i64)),
            7 => Input::Set(string(["a", "b"][rng.below(2) as usize])),
            8..=9 => Input::Del,
            _ => Input::Get,
        }
    }

    /// Runs ops one at a time against the model, at linearization points 10
    /// ticks apart, and wraps each in a random interval around its point, so
    /// the history is linearizable by construction.
    fn linearizable_history(seed: u64, s: &Shape) -> Vec<Operation> {
        let mut rng = Rng::new(seed);
        let mut state: HashMap<&str, Option<Value>> = HashMap::new();
        let mut free_at = vec![0u64; s.clients as usize];
        let mut history = Vec::with_capacity(s.ops);
        let mut point = 0u64;
        while history.len() < s.ops {
            point += 10;
            let idle: Vec<usize> = (0..free_at.len()).filter(|&c| free_at[c] < point).collect();
            if idle.is_empty() {
                continue;
            }
            let client = idle[rng.below(idle.len() as u64) as usize];
            let key = s.keys[rng.below(s.keys.len() as u64) as usize];
            let input = random_input(&mut rng, s);
            let lo = free_at[client].max(point.saturating_sub(s.window));
            let call = lo + rng.below(point - lo);
            let ret = point + 1 + rng.below(s.window);
            let st = state.entry(key).or_default();
            let mut op =
                Operation { client: client as u64, key: key.to_string(), input, call, ret: Some(ret), output: None };
            if rng.chance(s.unknown_percent) {
                op.ret = None;
                if rng.chance(50) {
                    *st = model_step(st, &op.input).0;
                }
                free_at[client] = point + rng.below(s.window);
            } else {
                let (next, mut out) = model_step(st, &op.input);
                *st = next;
                if matches!(out, Output::Incr(Some(_))) && rng.chance(s.incr_none_percent) {
                    out = Output::Incr(None);
                }
                op.output = Some(out);
                free_at[client] = ret;
            }
            history.push(op);
        }
        history
    }

    const BIG: Shape = Shape { ops: 600, clients: 6, keys: &["a", "b", "c"], window: 40, values: 4, ..SMALL };

    fn known_gets(h: &[Operation]) -> Vec<usize> {
        (0..h.len()).filter(|&i| matches!(h[i].output, Some(Output::Get(_)))).collect()
    }

    #[test]
    fn random_linearizable_histories_pass_and_tampered_ones_fail() {
        for seed in 0..10 {
            let h = linearizable_history(seed, &BIG);
            assert_ok(&h);

            let mut rng = Rng::new(seed + 1000);
            let gets = known_gets(&h);
            let mut bad = h.clone();
            let i = gets[rng.below(gets.len() as u64) as usize];
            bad[i].output = Some(Output::Get(Some(string("never written"))));
            assert_eq!(assert_violation(&bad).key, bad[i].key);

            let incrs: Vec<usize> =
                (0..h.len()).filter(|&i| matches!(h[i].output, Some(Output::Incr(Some(_))))).collect();
            let mut bad = h.clone();
            let i = incrs[rng.below(incrs.len() as u64) as usize];
            if let Some(Output::Incr(Some(v))) = &mut bad[i].output {
                *v += 1_000_000;
            }
            assert_eq!(assert_violation(&bad).key, bad[i].key);
        }
    }

    /// Plain Wing & Gong: tries every order of the ops that respects real
    /// time, remembering only the (placed set, state) pairs that failed. No
    /// pruning beyond that, so it is obviously right, and slow.
    fn brute_force(
        ops: &[Operation],
        placed: u32,
        state: &Option<Value>,
        failed: &mut HashSet<(u32, Option<Value>)>,
    ) -> bool {
        let all_known_placed = (0..ops.len()).all(|i| placed & (1 << i) != 0 || ops[i].ret.is_none());
        if all_known_placed {
            return true;
        }
        if failed.contains(&(placed, state.clone())) {
            return false;
        }
        let free = |j: usize| placed & (1 << j) == 0;
        let found = (0..ops.len()).any(|i| {
            let preceded = (0..ops.len()).any(|j| j != i && free(j) && ops[j].ret.is_some_and(|r| r <= ops[i].call));
            if !free(i) || preceded {
                return false;
            }
            let (next, out) = model_step(state, &ops[i].input);
            let fits = match (&ops[i].output, &out) {
                (None, _) => true,
                (Some(Output::Incr(None)), Output::Incr(Some(_))) => true,
                (Some(actual), _) => *actual == out,
            };
            fits && brute_force(ops, placed | (1 << i), &next, failed)
        });
        if !found {
            failed.insert((placed, state.clone()));
        }
        found
    }

    fn random_output(rng: &mut Rng, input: &Input) -> Output {
        let v = |rng: &mut Rng| match rng.below(4) {
            0 => None,
            1 => Some(string("a")),
            _ => Some(int(rng.below(3) as i64)),
        };
        match input {
            Input::Set(_) | Input::Del => Output::Done,
            Input::Incr(_) => match rng.below(4) {
                0 => Output::IncrNotInteger,
                1 => Output::Incr(None),
                _ => Output::Incr(Some(rng.below(4) as i64 - 1)),
            },
            Input::Get => Output::Get(v(rng)),
        }
    }

    fn agrees_with_brute_force(base: Shape, cases: u64) {
        let mut outcomes = [0; 2];
        for seed in 0..cases {
            let mut rng = Rng::new(seed);
            let shape = Shape {
                ops: 2 + rng.below(base.ops as u64 - 1) as usize,
                clients: 2 + rng.below(base.clients - 1),
                window: 5 + rng.below(base.window),
                ..base
            };
            let mut h = linearizable_history(seed, &shape);
            // Perturb some outputs so that both outcomes occur.
            for op in &mut h {
                if op.output.is_some() && rng.chance(15) {
                    op.output = Some(random_output(&mut rng, &op.input));
                }
            }
            let expected = brute_force(&h, 0, &None, &mut HashSet::new());
            let ok = match check_key(&h, BUDGET) {
                CheckResult::Ok => true,
                CheckResult::Violation(_) => false,
                CheckResult::GaveUp { .. } => panic!("gave up on {h:#?}"),
            };
            assert_eq!(ok, expected, "seed {seed}: {h:#?}");
            outcomes[usize::from(ok)] += 1;
        }
        eprintln!("brute force: {} violations, {} ok", outcomes[0], outcomes[1]);
        assert!(outcomes[0] > cases / 10 && outcomes[1] > cases / 10, "{outcomes:?}");
    }

    #[test]
    fn agrees_with_brute_force_on_small_histories() {
        agrees_with_brute_force(SMALL, 4000);
    }

    #[test]
    fn agrees_with_brute_force_with_many_unknown_outcomes() {
        // Mostly incrs, half of them with unknown outcome or value: the cases
        // where the search prunes hardest.
        let shape = Shape { unknown_percent: 50, deltas: 2, incr_percent: 60, incr_none_percent: 30, ..SMALL };
        agrees_with_brute_force(shape, 6000);
    }

    #[test]
    fn many_unknown_outcomes_do_not_blow_up() {
        // 40 timed-out writes that never took effect, then a stale read: the
        // search must prove the violation without trying every subset of them.
        let mut h: Vec<Operation> = (0..40).map(|i| pending(i, "k", Input::Set(int(100 + i as i64)), i)).collect();
        h.push(set(100, int(1), 50, 60));
        h.push(set(100, int(2), 70, 80));
        h.push(get(101, 90, 100, Some(int(1))));
        let t = Instant::now();
        assert_violation(&h);
        h.pop();
        h.push(get(101, 90, 100, Some(int(130))));
        assert_ok(&h);
        eprintln!("40 unknown sets: {:?}", t.elapsed());

        // The same with incrs around a counter that other clients keep
        // using: 30 timed-out incrs of deltas 1 to 3, and 12 of powers of two,
        // whose subsets all reach distinct values.
        let deltas = (0..30).map(|i| 1 + i % 3).chain((0..12).map(|i| 1 << (i + 2)));
        let mut h: Vec<Operation> =
            deltas.enumerate().map(|(i, d)| pending(i as u64, "k", Input::Incr(d), i as u64)).collect();
        let unknown = h.len();
        for j in 0..50 {
            h.push(incr(100 + j % 3, 1, 100 + 10 * j, 105 + 10 * j, Output::Incr(Some(j as i64 + 1))));
        }
        let t = Instant::now();
        assert_ok(&h);
        let last = h.len() - 1;
        h[last].output = Some(Output::Incr(Some(1 << 40)));
        assert_violation(&h);
        // Some of them did take effect, at different times.
        let took = [4, 4 + 16, 2 + 64, 512 + 1, 3, 1 << 13];
        let mut value = 0;
        for j in 0..50 {
            value += took.get(j).copied().unwrap_or(0) + 1;
            h[unknown + j].output = Some(Output::Incr(Some(value)));
        }
        assert_ok(&h);
        // Every delta is positive, so the counter cannot repeat a value.
        h[unknown + 2].output = h[unknown + 1].output.clone();
        assert_violation(&h);
        eprintln!("42 unknown incrs: {:?}", t.elapsed());
    }

    #[test]
    fn gives_up_when_over_budget() {
        let h = linearizable_history(7, &BIG);
        match check(&h, 10) {
            CheckResult::GaveUp { key, steps } => {
                assert_eq!(key, "a");
                assert_eq!(steps, 11);
            }
            other => panic!("expected GaveUp, got {other}"),
        }
    }

    /// The verdict and the number of steps it took.
    fn search_cost(ops: &[Operation]) -> (&'static str, u64, usize) {
        let refs: Vec<&Operation> = ops.iter().collect();
        let compiled = Compiled::new(&refs);
        let mut search = Search::new(&compiled);
        let verdict = match search.run(DEFAULT_STEP_BUDGET) {
            Outcome::Linearizable => "linearizable",
            Outcome::NotLinearizable(_) => "violation",
            Outcome::GaveUp(_) => "gave up",
        };
        (verdict, search.steps, search.memo.entries.len())
    }

    #[test]
    fn performance_2000_ops_8_clients() {
        // Unique-ish values and small deltas, as a simulator would pick them to
        // keep histories cheap to check; 5% of ops time out.
        let shape =
            Shape { ops: 2000, clients: 8, window: 100, unknown_percent: 5, values: 1_000_000, deltas: 3, ..SMALL };
        let h = linearizable_history(42, &shape);
        let t = Instant::now();
        let result = check(&h, DEFAULT_STEP_BUDGET);
        let elapsed = t.elapsed();
        let (verdict, steps, memo) = search_cost(&h);
        eprintln!("2000 ops, 8 clients, linearizable: {elapsed:?}, {verdict}, {steps} steps, {memo} memo entries");
        assert!(result.is_ok(), "{result}");

        // A read of a value never written, about 40% into the history: the
        // search must exhaust every interleaving up to it.
        let mut bad = h.clone();
        let i = known_gets(&h)[300];
        bad[i].output = Some(Output::Get(Some(int(1_000))));
        let t = Instant::now();
        let result = check(&bad, DEFAULT_STEP_BUDGET);
        let elapsed = t.elapsed();
        let (verdict, steps, memo) = search_cost(&bad);
        eprintln!("2000 ops, 8 clients, tampered: {elapsed:?}, {verdict}, {steps} steps, {memo} memo entries");
        assert!(!result.is_ok());
    }
}
