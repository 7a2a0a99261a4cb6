//! What a running change shows on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use super::change::Plan;
use crate::cli::output;
use traftctl::pb::{ClusterConfig, StatusReply};

/// The step a change is at, as the leader's configuration shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Not started yet (or already over): the configuration has no change in flight.
    Idle,
    Learners,
    Joint,
}

pub(super) fn step_of(config: &ClusterConfig) -> Step {
    if !config.learners.is_empty() {
        Step::Learners
    } else if config.next.is_some() {
        Step::Joint
    } else {
        Step::Idle
    }
}

/// How many records the new members are behind the leader, at most. The
/// leader reports a learner without its `Info` (it is not in `Members`), so a
/// member status without one is taken to be a learner's.
pub(super) fn learner_lag(status: &StatusReply) -> Option<i64> {
    let learners = status.config.as_ref().map(|c| c.learners.clone()).unwrap_or_default();
    status.members.iter().filter(|m| m.info.as_ref().is_none_or(|i| learners.contains_key(&i.id))).map(|m| m.lag).max()
}

/// Catch-up and step reporting on stderr: a progress bar on a terminal,
/// otherwise a line per step.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    step: Step,
    newcomers: Vec<i64>,
    has_newcomers: bool,
    last_lag: Option<i64>,
}

impl Progress {
    pub(super) fn new(plan: &Plan) -> Self {
        let newcomers: Vec<i64> =
            plan.target.members.keys().copied().filter(|id| !plan.current.members.contains_key(id)).collect();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message("sending the change to the leader");
            bar
        });
        let has_newcomers = !newcomers.is_empty();
        Progress { bar, step: Step::Idle, newcomers, has_newcomers, last_lag: None }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => eprintln!("{text}"),
        }
    }

    pub(super) fn update(&mut self, status: Option<StatusReply>) {
        let Some(status) = status else { return };
        let Some(config) = status.config.as_ref() else { return };
        let step = step_of(config);
        let who = output::id_set(&self.newcomers);
        if step != self.step {
            self.step = step.clone();
            match step {
                Step::Learners => match &self.bar {
                    Some(bar) => {
                        let style = indicatif::ProgressStyle::with_template(
                            "{spinner} step 1/3: learner {msg} catching up [{bar:30}] {pos}/{len} records",
                        );
                        bar.set_style(style.unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
                        bar.set_message(who.clone());
                    }
                    None => eprintln!("step 1/3: {who} joined as learners and receive the log"),
                },
                Step::Joint => {
                    if let Some(bar) = &self.bar {
                        bar.set_style(indicatif::ProgressStyle::default_spinner());
                    }
                    self.line(format!(
                        "step {}: the joint configuration is in force; waiting for a quorum of the old and of the \
                         new members to hold it",
                        if self.has_newcomers { "2/3" } else { "1/2" }
                    ));
                }
                Step::Idle => {}
            }
        }
        let lag = if step == Step::Learners { learner_lag(&status) } else { None };
        if let Some(lag) = lag.map(|l| l.max(0) as u64) {
            match &self.bar {
                Some(bar) => {
                    // The bar starts at the first lag seen; more writes may
                    // make the learner fall further behind.
                    let len = bar.length().unwrap_or(0).max(lag);
                    bar.set_length(len);
                    bar.set_position(len - lag);
                }
                None if self.last_lag.is_none() => eprintln!("  {who} is {lag} records behind the leader"),
                None => {}
            }
            self.last_lag = Some(lag as i64);
        }
    }

    /// Clears the bar; on success, says the last step is done (a line in
    /// any case: the bar is gone and the table follows on stdout).
    pub(super) fn finish(&mut self, done: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if done {
            let n = if self.has_newcomers { "3/3" } else { "2/2" };
            eprintln!("step {n}: the new configuration is in force");
        }
    }
}
