//! The key-value state machine that committed records are applied to.

use crate::cmd::{OP_DEL, OP_INCR, OP_SET};
use crate::pb::Cmd;
use crate::pb::cmd::Value;

/// What applying one command produced, reported to the proposing client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyResult {
    /// A set, del, no-op or config change took effect.
    Done,
    /// `incr`: the value after the increment.
    Incremented(i64),
    /// `incr` on a key holding a string: the state is unchanged.
    NotAnInteger,
    /// The record was overridden by a later committed record before it was
    /// applied here, so it took effect only as part of that record's history
    /// and its own result (for `incr`, the value) is not known.
    Overridden,
}

/// The key space, ordered by key. A persistent map: cloning it (for a
/// snapshot) shares every node and costs O(1); the next writes copy only the
/// paths they touch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvState {
    entries: imbl::OrdMap<String, Value>,
}

impl KvState {
    /// CRC-32 of every entry in key order, each as the encoded `set` that
    /// would recreate it: equal states have equal digests on every build.
    pub fn digest(&self) -> u32 {
        use prost::Message as _;
        let mut hasher = crc32fast::Hasher::new();
        for (key, value) in &self.entries {
            hasher.update(&Cmd::set(key.clone(), value.clone()).encode_length_delimited_to_vec());
        }
        hasher.finalize()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter()
    }

    /// Applies a key command. Config changes and no-ops leave the key space
    /// alone; the replica handles configs itself.
    pub fn apply(&mut self, cmd: &Cmd) -> ApplyResult {
        match cmd.op.as_str() {
            OP_SET => {
                if let Some(v) = &cmd.value {
                    self.entries.insert(cmd.key.clone(), v.clone());
                }
                ApplyResult::Done
            }
            OP_DEL => {
                self.entries.remove(&cmd.key);
                ApplyResult::Done
            }
            OP_INCR => {
                let delta = match cmd.value {
                    Some(Value::Vi64(d)) => d,
                    _ => 1,
                };
                match self.entries.get(&cmd.key) {
                    None => {
                        self.entries.insert(cmd.key.clone(), Value::Vi64(delta));
                        ApplyResult::Incremented(delta)
                    }
                    Some(Value::Vi64(x)) => {
                        // Wrapping keeps every replica deterministic on overflow.
                        let next = x.wrapping_add(delta);
                        self.entries.insert(cmd.key.clone(), Value::Vi64(next));
                        ApplyResult::Incremented(next)
                    }
                    Some(_) => ApplyResult::NotAnInteger,
                }
            }
            _ => ApplyResult::Done,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn equal_states_have_equal_digests() {
        let mut a = KvState::default();
        a.apply(&Cmd::set_i64("x", 1));
        a.apply(&Cmd::set_str("y", "v"));
        let mut b = KvState::default();
        b.apply(&Cmd::set_str("y", "v"));
        b.apply(&Cmd::incr("x", 1));
        assert_eq!(a.digest(), b.digest(), "the same entries, reached another way");
        b.apply(&Cmd::incr("x", 1));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(KvState::default().digest(), a.digest());
    }

    use super::*;

    #[test]
    fn set_del_incr() {
        let mut kv = KvState::default();
        assert_eq!(kv.apply(&Cmd::incr("n", 3)), ApplyResult::Incremented(3));
        assert_eq!(kv.apply(&Cmd::incr("n", -1)), ApplyResult::Incremented(2));
        assert_eq!(kv.apply(&Cmd::set_str("s", "a")), ApplyResult::Done);
        assert_eq!(kv.apply(&Cmd::incr("s", 1)), ApplyResult::NotAnInteger);
        assert_eq!(kv.get("s"), Some(&Value::VStr("a".into())));
        assert_eq!(kv.apply(&Cmd::del("n")), ApplyResult::Done);
        assert_eq!(kv.get("n"), None);
        assert_eq!(kv.apply(&Cmd::set_i64("n", i64::MAX)), ApplyResult::Done);
        assert_eq!(kv.apply(&Cmd::incr("n", 1)), ApplyResult::Incremented(i64::MIN));
    }
}
