//! The fault language: `delay=5ms,jitter=2ms`, `link=1-2,reset-every=200ms`,
//! `partition=1|2,3@10s`. One spec is one rule; several rules apply in
//! order, and for each kind of fault the last rule that names it for a link
//! wins (see [`effective`]).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::types::NodeId;

/// What a spec may say, for every error message.
pub const ACCEPTED: &str = "delay=DURATION, jitter=DURATION, drop=PERCENT%, reset-every=DURATION, \
                            partition=IDS|IDS[|...][@DURATION], blackhole, link=A-B (both directions) or link=A>B \
                            (one direction), or none; DURATION like 5ms, 1.5s, 2m; comma separated";

/// A spec that could not be parsed: the offending part, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec `{part}`: {why}")]
pub struct SpecError {
    pub part: String,
    pub why: String,
}

impl SpecError {
    fn new(part: &str, why: impl Into<String>) -> Self {
        SpecError { part: part.to_string(), why: why.into() }
    }
}

/// Which member-to-member links a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkFilter {
    #[default]
    All,
    /// `link=1-2`: the connections 1 opens to 2 and those 2 opens to 1.
    Between(NodeId, NodeId),
    /// `link=1>2`: only the connections 1 opens to 2 (both directions of
    /// their bytes: requests and replies travel on one connection).
    From(NodeId, NodeId),
}

impl LinkFilter {
    pub fn matches(&self, from: NodeId, to: NodeId) -> bool {
        match *self {
            LinkFilter::All => true,
            LinkFilter::Between(a, b) => (from, to) == (a, b) || (from, to) == (b, a),
            LinkFilter::From(a, b) => (from, to) == (a, b),
        }
    }

    fn ids(&self) -> Vec<NodeId> {
        match *self {
            LinkFilter::All => Vec::new(),
            LinkFilter::Between(a, b) | LinkFilter::From(a, b) => vec![a, b],
        }
    }
}

/// `partition=1|2,3`: no connection between members of different groups.
/// A member in no group keeps its links to everyone (a bridge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub groups: Vec<BTreeSet<NodeId>>,
    /// `@10s`: the partition heals by itself this long after it was set.
    pub heal_after: Option<Duration>,
}

impl Partition {
    /// Whether the partition cuts the link from `from` to `to`.
    pub fn separates(&self, from: NodeId, to: NodeId) -> bool {
        let group = |id| self.groups.iter().position(|g| g.contains(&id));
        matches!((group(from), group(to)), (Some(a), Some(b)) if a != b)
    }
}

/// One rule: faults, and the links they apply to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultSpec {
    pub link: LinkFilter,
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    /// Parts per million of forwarded chunks that close their connection.
    pub drop_ppm: Option<u32>,
    pub reset_every: Option<Duration>,
    pub blackhole: bool,
    pub partition: Option<Partition>,
}

impl FaultSpec {
    /// Parses one spec. `none` is the spec without faults.
    pub fn parse(spec: &str) -> Result<FaultSpec, SpecError> {
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(SpecError::new(spec, format!("it is empty; use `none` for no faults. Accepted: {ACCEPTED}")));
        }
        let mut out = FaultSpec::default();
        let mut seen = BTreeSet::new();
        for item in items(trimmed) {
            let item = item.as_str();
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item.trim(), None),
            };
            if key != "none" && !seen.insert(key.to_string()) {
                return Err(SpecError::new(item, format!("`{key}` is given twice in one spec")));
            }
            let needs_value = || value.filter(|v| !v.is_empty()).ok_or_else(|| missing_value(item, key));
            match key {
                "none" if value.is_none() => {}
                "blackhole" if value.is_none() => out.blackhole = true,
                "delay" => out.delay = Some(parse_duration(item, needs_value()?)?),
                "jitter" => out.jitter = Some(parse_duration(item, needs_value()?)?),
                "reset-every" => {
                    let period = parse_duration(item, needs_value()?)?;
                    if period.is_zero() {
                        return Err(SpecError::new(item, "the period must be above zero"));
                    }
                    out.reset_every = Some(period);
                }
                "drop" => out.drop_ppm = Some(parse_percent(item, needs_value()?)?),
                "link" => out.link = parse_link(item, needs_value()?)?,
                "partition" => out.partition = Some(parse_partition(item, needs_value()?)?),
                "none" | "blackhole" => return Err(SpecError::new(item, format!("`{key}` takes no value"))),
                _ if key.starts_with(|c: char| c.is_ascii_digit()) => {
                    return Err(SpecError::new(
                        item,
                        "a member id outside a partition; a partition's groups go right after `partition=`, \
                         e.g. partition=1|2,3",
                    ));
                }
                _ => return Err(SpecError::new(item, format!("not a fault. Accepted: {ACCEPTED}"))),
            }
        }
        if out.partition.is_some() && out.link != LinkFilter::All {
            return Err(SpecError::new(spec, "a partition names its own groups; it cannot be restricted with link="));
        }
        if out.jitter.is_some() && out.delay.is_none() {
            out.delay = Some(Duration::ZERO);
        }
        Ok(out)
    }

    /// Every member id the spec names.
    pub fn member_ids(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.link.ids().into_iter().collect();
        if let Some(p) = &self.partition {
            ids.extend(p.groups.iter().flatten());
        }
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.delay.is_none()
            && self.jitter.is_none()
            && self.drop_ppm.is_none()
            && self.reset_every.is_none()
            && !self.blackhole
            && self.partition.is_none()
    }
}

/// Parses several specs (one per `--chaos`), dropping the `none` ones.
pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<Vec<FaultSpec>, SpecError> {
    let parsed: Vec<FaultSpec> = specs.iter().map(|s| FaultSpec::parse(s.as_ref())).collect::<Result<_, _>>()?;
    Ok(parsed.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Splits on commas, except inside a partition's groups: `partition=1|2,3`
/// is one item, since a bare id or `id|id` continues the partition before it.
fn items(spec: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in spec.split(',') {
        let continues_partition = !raw.contains('=')
            && raw.trim().starts_with(|c: char| c.is_ascii_digit())
            && out.last().is_some_and(|prev| prev.trim_start().starts_with("partition=") && !prev.contains('@'));
        match out.last_mut() {
            Some(prev) if continues_partition => {
                prev.push(',');
                prev.push_str(raw);
            }
            _ => out.push(raw.to_string()),
        }
    }
    out
}

fn missing_value(item: &str, key: &str) -> SpecError {
    let example = match key {
        "delay" | "jitter" => "e.g. delay=5ms",
        "reset-every" => "e.g. reset-every=200ms",
        "drop" => "e.g. drop=1%",
        "link" => "e.g. link=1-2 or link=1>2",
        _ => "e.g. partition=1|2,3",
    };
    SpecError::new(item, format!("`{key}` needs a value, {example}"))
}

/// `250us`, `5ms`, `1.5s`, `2m`: a unit is required.
pub fn parse_duration(item: &str, s: &str) -> Result<Duration, SpecError> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let bad =
        || SpecError::new(item, format!("`{s}` is not a duration; use a number and a unit: 500us, 5ms, 1.5s, 2m"));
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

fn parse_percent(item: &str, s: &str) -> Result<u32, SpecError> {
    let bad = || SpecError::new(item, format!("`{s}` is not a percentage from 0% to 100%, e.g. drop=1% or drop=0.5%"));
    let number = s.strip_suffix('%').ok_or_else(bad)?;
    let p: f64 = number.trim().parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&p) {
        return Err(bad());
    }
    Ok((p * 10_000.0).round() as u32)
}

fn parse_id(item: &str, s: &str) -> Result<NodeId, SpecError> {
    s.trim()
        .parse::<NodeId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| SpecError::new(item, format!("`{}` is not a member id (a positive integer)", s.trim())))
}

fn parse_link(item: &str, s: &str) -> Result<LinkFilter, SpecError> {
    let (filter, a, b) = if let Some((a, b)) = s.split_once('-') {
        (LinkFilter::Between as fn(NodeId, NodeId) -> LinkFilter, a, b)
    } else if let Some((a, b)) = s.split_once('>') {
        (LinkFilter::From as fn(NodeId, NodeId) -> LinkFilter, a, b)
    } else {
        return Err(SpecError::new(item, "expected link=A-B (both directions) or link=A>B (from A to B)"));
    };
    let (a, b) = (parse_id(item, a)?, parse_id(item, b)?);
    if a == b {
        return Err(SpecError::new(item, "a link joins two different members"));
    }
    Ok(filter(a, b))
}

fn parse_partition(item: &str, s: &str) -> Result<Partition, SpecError> {
    let (groups, heal_after) = match s.split_once('@') {
        Some((g, d)) => (g, Some(parse_duration(item, d.trim())?)),
        None => (s, None),
    };
    let mut seen = BTreeSet::new();
    let mut parsed = Vec::new();
    for group in groups.split('|') {
        let mut ids = BTreeSet::new();
        for id in group.split(',').filter(|p| !p.trim().is_empty()) {
            let id = parse_id(item, id)?;
            if !seen.insert(id) {
                return Err(SpecError::new(item, format!("member {id} is in two groups")));
            }
            ids.insert(id);
        }
        if ids.is_empty() {
            return Err(SpecError::new(item, "a group is empty; write the groups as 1|2,3"));
        }
        parsed.push(ids);
    }
    if parsed.len() < 2 {
        return Err(SpecError::new(item, "a partition needs at least two groups separated by `|`, e.g. 1|2,3"));
    }
    Ok(Partition { groups: parsed, heal_after })
}

/// `200ms`, `10s`, `1500us`: the shortest exact form.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

impl fmt::Display for LinkFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFilter::All => write!(f, "all links"),
            LinkFilter::Between(a, b) => write!(f, "link={a}-{b}"),
            LinkFilter::From(a, b) => write!(f, "link={a}>{b}"),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> =
            self.groups.iter().map(|g| g.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")).collect();
        write!(f, "partition={}", groups.join("|"))?;
        if let Some(d) = self.heal_after {
            write!(f, "@{}", fmt_duration(d))?;
        }
        Ok(())
    }
}

/// The canonical spec, which parses back to the same rule.
impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.link != LinkFilter::All {
            parts.push(self.link.to_string());
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay={}", fmt_duration(d)));
        }
        if let Some(d) = self.jitter {
            parts.push(format!("jitter={}", fmt_duration(d)));
        }
        if let Some(p) = self.drop_ppm {
            parts.push(format!("drop={}%", f64::from(p) / 10_000.0));
        }
        if let Some(d) = self.reset_every {
            parts.push(format!("reset-every={}", fmt_duration(d)));
        }
        if self.blackhole {
            parts.push("blackhole".into());
        }
        if let Some(p) = &self.partition {
            parts.push(p.to_string());
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        write!(f, "{}", parts.join(","))
    }
}

/// What a link suffers once every rule is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkFaults {
    pub delay: Duration,
    pub jitter: Duration,
    pub drop_ppm: u32,
    pub reset_every: Option<Duration>,
    pub blackhole: bool,
    /// A partition separates the link's two ends.
    pub cut: bool,
}

impl LinkFaults {
    pub fn is_clear(&self) -> bool {
        *self == LinkFaults::default()
    }
}

/// The faults in spec words, `partitioned` for a cut link, `none` if clear.
impl fmt::Display for LinkFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.cut {
            parts.push("partitioned".to_string());
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay={}", fmt_duration(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", fmt_duration(self.jitter)));
        }
        if self.drop_ppm > 0 {
            parts.push(format!("drop={}%", f64::from(self.drop_ppm) / 10_000.0));
        }
        if let Some(d) = self.reset_every {
            parts.push(format!("reset-every={}", fmt_duration(d)));
        }
        if self.blackhole {
            parts.push("blackhole".into());
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        write!(f, "{}", parts.join(","))
    }
}

/// The faults of the link from `from` to `to` under `rules`: for each kind,
/// the last rule that names it and applies to the link; a blackhole if any
/// rule puts one there; cut if any partition that has not healed
/// (`healed[i]` for rule `i`) separates the two ends. A link without member
/// ids (`None`, a `fault_proxy` link given as LISTEN=TARGET) takes the rules
/// for all links and no other.
pub fn effective(rules: &[FaultSpec], healed: &[bool], ends: Option<(NodeId, NodeId)>) -> LinkFaults {
    let mut out = LinkFaults::default();
    for (i, rule) in rules.iter().enumerate() {
        let applies = match ends {
            Some((from, to)) => rule.link.matches(from, to),
            None => rule.link == LinkFilter::All,
        };
        if let (Some(p), Some((from, to))) = (&rule.partition, ends)
            && !healed.get(i).copied().unwrap_or(false)
            && p.separates(from, to)
        {
            out.cut = true;
        }
        if !applies {
            continue;
        }
        if let Some(d) = rule.delay {
            out.delay = d;
        }
        if let Some(j) = rule.jitter {
            out.jitter = j;
        }
        if let Some(p) = rule.drop_ppm {
            out.drop_ppm = p;
        }
        if let Some(r) = rule.reset_every {
            out.reset_every = Some(r);
        }
        out.blackhole |= rule.blackhole;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_fault_parses_and_prints_back() {
        let spec = FaultSpec::parse("delay=5ms,jitter=2ms,drop=1%,reset-every=200ms,blackhole").unwrap();
        assert_eq!(
            spec,
            FaultSpec {
                delay: Some(ms(5)),
                jitter: Some(ms(2)),
                drop_ppm: Some(10_000),
                reset_every: Some(ms(200)),
                blackhole: true,
                ..FaultSpec::default()
            }
        );
        assert_eq!(FaultSpec::parse(&spec.to_string()).unwrap(), spec);
        for text in ["link=1-2,reset-every=200ms", "link=1>2,delay=1500us", "partition=1|2,3@10s", "drop=0.5%", "none"]
        {
            let parsed = FaultSpec::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text, "canonical form of {text}");
        }
    }

    #[test]
    fn a_partition_keeps_its_commas() {
        let p = FaultSpec::parse("partition=1,2|3,4,5").unwrap().partition.unwrap();
        assert_eq!(p.groups, vec![BTreeSet::from([1, 2]), BTreeSet::from([3, 4, 5])]);
        assert_eq!(p.heal_after, None);
        let timed = FaultSpec::parse("partition=1|2,3@10s,delay=1ms").unwrap();
        assert_eq!(timed.partition.unwrap().heal_after, Some(Duration::from_secs(10)));
        assert_eq!(timed.delay, Some(ms(1)));
        let three = FaultSpec::parse("partition=1|2|3").unwrap().partition.unwrap();
        assert!(three.separates(1, 3) && three.separates(3, 2));
        let bridge = FaultSpec::parse("partition=1|2").unwrap().partition.unwrap();
        assert!(bridge.separates(2, 1) && !bridge.separates(1, 3) && !bridge.separates(3, 2), "3 is in no group");
    }

    #[test]
    fn errors_name_the_offending_part() {
        let cases = [
            ("delay=5", "delay=5", "not a duration"),
            ("delay=5xs", "delay=5xs", "not a duration"),
            ("delay", "delay", "needs a value"),
            ("drop=1", "drop=1", "percentage"),
            ("drop=101%", "drop=101%", "percentage"),
            ("reset-every=0ms", "reset-every=0ms", "above zero"),
            ("link=1", "link=1", "link=A-B"),
            ("link=2-2", "link=2-2", "two different members"),
            ("link=0-2", "link=0-2", "not a member id"),
            ("partition=1", "partition=1", "at least two groups"),
            ("partition=1|1", "partition=1|1", "in two groups"),
            ("partition=1||2", "partition=1||2", "empty"),
            ("delay=1ms,3", "3", "outside a partition"),
            ("slow=1ms", "slow=1ms", "not a fault"),
            ("blackhole=1", "blackhole=1", "takes no value"),
            ("delay=1ms,delay=2ms", "delay=2ms", "twice"),
            ("", "", "empty"),
            ("link=1-2,partition=1|2", "link=1-2,partition=1|2", "cannot be restricted"),
        ];
        for (spec, part, why) in cases {
            let e = FaultSpec::parse(spec).expect_err(spec);
            assert_eq!(e.part, part, "{spec}: {e}");
            assert!(e.why.contains(why), "{spec}: {e}");
        }
        let e = FaultSpec::parse("slow=1ms").unwrap_err().to_string();
        assert!(e.contains("reset-every=DURATION") && e.contains("link=A-B"), "lists what is accepted: {e}");
    }

    #[test]
    fn the_last_rule_naming_a_fault_wins_per_link() {
        let rules = parse_all(&["delay=5ms,drop=1%", "link=1-2,delay=50ms", "link=2>3,blackhole", "none"]).unwrap();
        assert_eq!(rules.len(), 3, "`none` adds no rule");
        let healed = [false; 3];
        let l12 = effective(&rules, &healed, Some((1, 2)));
        assert_eq!((l12.delay, l12.drop_ppm, l12.blackhole), (ms(50), 10_000, false));
        assert_eq!(effective(&rules, &healed, Some((2, 1))).delay, ms(50), "1-2 is both directions");
        assert_eq!(effective(&rules, &healed, Some((1, 3))).delay, ms(5));
        assert!(effective(&rules, &healed, Some((2, 3))).blackhole);
        assert!(!effective(&rules, &healed, Some((3, 2))).blackhole, "2>3 is one direction");
        let anonymous = effective(&rules, &healed, None);
        assert_eq!(
            (anonymous.delay, anonymous.blackhole),
            (ms(5), false),
            "an id-less link takes only the global rules"
        );
    }

    #[test]
    fn a_partition_cuts_until_healed() {
        let rules = parse_all(&["partition=1|2,3"]).unwrap();
        assert!(effective(&rules, &[false], Some((1, 2))).cut);
        assert!(effective(&rules, &[false], Some((3, 1))).cut);
        assert!(!effective(&rules, &[false], Some((2, 3))).cut);
        assert!(effective(&rules, &[true], Some((1, 2))).is_clear());
        assert!(!effective(&rules, &[false], None).cut, "an id-less link is in no group");
    }
}
