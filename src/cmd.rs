//! Commands: what a log record does to the key-value state machine.

use std::fmt;

use crate::pb::cmd::Value;
use crate::pb::{ClusterConfig, Cmd};

/// The operations a command can carry, as they appear in `Cmd.Op`.
pub const OP_SET: &str = "set";
pub const OP_DEL: &str = "del";
pub const OP_INCR: &str = "incr";
pub const OP_CONFIG: &str = "config";
/// Fills a hole in a new leader's base log; it interferes with nothing.
pub const OP_NOOP: &str = "noop";

/// What the CLI accepts, listed in every parse error so the user can fix the call.
pub const VALID_FORMS: &str = "valid forms: `set KEY VALUE` (or `put`), `incr KEY [DELTA]`, `del KEY`";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdParseError {
    #[error("no operation given; {VALID_FORMS}")]
    Empty,
    #[error("unknown operation `{0}`; {VALID_FORMS}")]
    UnknownOp(String),
    #[error("`{op}` takes {expected}, got {got} word(s); {VALID_FORMS}")]
    WrongArity { op: String, expected: &'static str, got: usize },
    #[error("the key must not be empty; {VALID_FORMS}")]
    EmptyKey,
    #[error("`incr` needs an integer delta, got `{0}`; {VALID_FORMS}")]
    BadDelta(String),
}

impl Cmd {
    pub fn set(key: impl Into<String>, value: Value) -> Self {
        Cmd { op: OP_SET.into(), key: key.into(), value: Some(value) }
    }

    pub fn set_i64(key: impl Into<String>, v: i64) -> Self {
        Self::set(key, Value::Vi64(v))
    }

    pub fn set_str(key: impl Into<String>, v: impl Into<String>) -> Self {
        Self::set(key, Value::VStr(v.into()))
    }

    pub fn del(key: impl Into<String>) -> Self {
        Cmd { op: OP_DEL.into(), key: key.into(), value: None }
    }

    pub fn incr(key: impl Into<String>, delta: i64) -> Self {
        Cmd { op: OP_INCR.into(), key: key.into(), value: Some(Value::Vi64(delta)) }
    }

    pub fn config(config: ClusterConfig) -> Self {
        Cmd { op: OP_CONFIG.into(), key: String::new(), value: Some(Value::VClusterConfig(config)) }
    }

    /// A config record of one stage of a change: `learners`, `joint` or
    /// `final` (docs/protocol.md, "Membership").
    pub fn config_stage(config: ClusterConfig, stage: &str) -> Self {
        Cmd { op: OP_CONFIG.into(), key: stage.into(), value: Some(Value::VClusterConfig(config)) }
    }

    pub fn noop() -> Self {
        Cmd { op: OP_NOOP.into(), key: String::new(), value: None }
    }

    pub fn is_noop(&self) -> bool {
        self.op == OP_NOOP
    }

    pub fn is_config(&self) -> bool {
        self.op == OP_CONFIG
    }

    /// Blind writes replace the key's value whatever came before, so they
    /// override the records they supersede instead of depending on them.
    pub fn is_blind_write(&self) -> bool {
        self.op == OP_SET || self.op == OP_DEL
    }

    pub fn config_value(&self) -> Option<&ClusterConfig> {
        match &self.value {
            Some(Value::VClusterConfig(c)) if self.is_config() => Some(c),
            _ => None,
        }
    }

    /// True when applying `self` and `other` in different orders can give a
    /// different outcome. A no-op interferes with nothing; a config change
    /// with everything else; key commands when they share a key.
    pub fn interfering(&self, other: &Cmd) -> bool {
        if self.is_noop() || other.is_noop() {
            return false;
        }
        if self.is_config() || other.is_config() {
            return true;
        }
        self.key == other.key
    }

    /// Parses the words of `traftctl propose`, e.g. `set x 5`, `incr n 3`.
    /// A value that parses as an integer is stored as one, so `incr` works on it.
    pub fn parse_words<S: AsRef<str>>(words: &[S]) -> Result<Cmd, CmdParseError> {
        let words: Vec<&str> = words.iter().map(|w| w.as_ref()).collect();
        let Some((&op, args)) = words.split_first() else {
            return Err(CmdParseError::Empty);
        };
        let arity =
            |expected: &'static str| CmdParseError::WrongArity { op: op.to_string(), expected, got: args.len() };
        let key = |k: &str| {
            if k.is_empty() { Err(CmdParseError::EmptyKey) } else { Ok(k.to_string()) }
        };
        match op {
            // `put` is what etcd operators type for `set`.
            OP_SET | "put" => match args {
                [k, v] => Ok(Cmd::set(key(k)?, parse_value(v))),
                _ => Err(arity("a key and a value")),
            },
            OP_DEL => match args {
                [k] => Ok(Cmd::del(key(k)?)),
                _ => Err(arity("a key")),
            },
            OP_INCR => match args {
                [k] => Ok(Cmd::incr(key(k)?, 1)),
                [k, d] => {
                    let delta = d.parse::<i64>().map_err(|_| CmdParseError::BadDelta(d.to_string()))?;
                    Ok(Cmd::incr(key(k)?, delta))
                }
                _ => Err(arity("a key and an optional delta")),
            },
            other => Err(CmdParseError::UnknownOp(other.to_string())),
        }
    }
}

fn parse_value(word: &str) -> Value {
    match word.parse::<i64>() {
        Ok(n) => Value::Vi64(n),
        Err(_) => Value::VStr(word.to_string()),
    }
}

/// Short form of a value: integers bare, strings quoted only when they would
/// otherwise read as a number.
pub fn value_short(value: &Value) -> String {
    match value {
        Value::Vi64(n) => n.to_string(),
        Value::VStr(s) if s.parse::<i64>().is_ok() => format!("{s:?}"),
        Value::VStr(s) => s.clone(),
        Value::VClusterConfig(c) => format!("{c}"),
    }
}

impl fmt::Display for Cmd {
    /// `set(x, 5)`, `del(x)`, `incr(n, 3)`, `noop`, `config({1,2,3} ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.value, self.op.as_str()) {
            (_, OP_NOOP) => f.write_str("noop"),
            (Some(Value::VClusterConfig(c)), _) => write!(f, "config({c})"),
            (Some(v), _) => write!(f, "{}({}, {})", self.op, self.key, value_short(v)),
            (None, _) => write!(f, "{}({})", self.op, self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Cmd::parse_words(&["set", "x", "5"]).unwrap(), Cmd::set_i64("x", 5));
        assert_eq!(Cmd::parse_words(&["set", "name", "alice"]).unwrap(), Cmd::set_str("name", "alice"));
        assert_eq!(Cmd::parse_words(&["incr", "n", "3"]).unwrap(), Cmd::incr("n", 3));
        assert_eq!(Cmd::parse_words(&["incr", "n"]).unwrap(), Cmd::incr("n", 1));
        assert_eq!(Cmd::parse_words(&["del", "x"]).unwrap(), Cmd::del("x"));
    }

    #[test]
    fn wrong_words_list_the_valid_forms() {
        for words in
            [vec![], vec!["get", "x"], vec!["set", "x"], vec!["del"], vec!["incr", "n", "two"], vec!["set", "", "1"]]
        {
            let err = Cmd::parse_words(&words).unwrap_err().to_string();
            assert!(err.contains(VALID_FORMS), "{words:?}: {err}");
        }
        assert_eq!(Cmd::parse_words(&["put", "x", "5"]), Cmd::parse_words(&["set", "x", "5"]), "put is set");
        assert_eq!(Cmd::parse_words(&["get", "x"]).unwrap_err(), CmdParseError::UnknownOp("get".into()));
    }

    #[test]
    fn interference() {
        let x1 = Cmd::set_i64("x", 1);
        let x2 = Cmd::incr("x", 1);
        let y = Cmd::del("y");
        let cfg = Cmd::config(ClusterConfig::default());
        assert!(x1.interfering(&x2));
        assert!(!x1.interfering(&y));
        assert!(cfg.interfering(&y) && y.interfering(&cfg) && cfg.interfering(&cfg));
        assert!(!Cmd::noop().interfering(&cfg) && !x1.interfering(&Cmd::noop()));
    }

    #[test]
    fn short_strings() {
        assert_eq!(Cmd::set_i64("x", 5).to_string(), "set(x, 5)");
        assert_eq!(Cmd::set_str("x", "7").to_string(), "set(x, \"7\")");
        assert_eq!(Cmd::del("x").to_string(), "del(x)");
        assert_eq!(Cmd::noop().to_string(), "noop");
    }
}
