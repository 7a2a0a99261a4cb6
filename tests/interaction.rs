//! Scripted protocol scenarios in the spirit of etcd-raft's interaction
//! tests: each file in `tests/interaction/testdata/` is a script of
//! commands with the output each must print (the language is described in
//! `tests/interaction/harness.rs`). A failing script shows the first block
//! whose output differs; `TRAFT_REWRITE=1 cargo test --test interaction`
//! rewrites the expected outputs, to be reviewed as a diff.

#[path = "interaction/harness.rs"]
mod harness;

use std::path::Path;

use harness::Interaction;

struct Block {
    /// Comment lines above the command, kept when rewriting.
    comments: Vec<String>,
    command: String,
    expected: String,
}

fn parse(text: &str, path: &Path) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut comments = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line.starts_with('#') {
            comments.push(line.to_string());
            continue;
        }
        if line.trim().is_empty() {
            if !comments.is_empty() {
                comments.push(String::new());
            }
            continue;
        }
        let separator = lines.next().map(|(_, l)| l);
        assert_eq!(separator, Some("----"), "{}:{}: expected ---- after the command {line:?}", path.display(), n + 1);
        let mut expected = String::new();
        while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            expected.push_str(l);
            expected.push('\n');
        }
        blocks.push(Block { comments: std::mem::take(&mut comments), command: line.to_string(), expected });
    }
    blocks
}

fn run_script(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interaction/testdata").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rewrite = std::env::var_os("TRAFT_REWRITE").is_some();
    let mut interaction = Interaction::default();
    let mut rewritten = String::new();
    for block in parse(&text, &path) {
        let actual = interaction
            .command(&block.command)
            .unwrap_or_else(|e| panic!("{}: command {:?}: {e}", path.display(), block.command));
        if rewrite {
            for c in &block.comments {
                rewritten.push_str(c);
                rewritten.push('\n');
            }
            rewritten.push_str(&format!("{}\n----\n{actual}\n", block.command));
        } else if actual != block.expected {
            panic!(
                "{}: the output of {:?} differs\n--- expected\n{}--- actual\n{}\n(TRAFT_REWRITE=1 rewrites the script; review the diff)",
                path.display(),
                block.command,
                block.expected,
                actual
            );
        }
    }
    if rewrite {
        std::fs::write(&path, rewritten).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

macro_rules! scripts {
    ($($test:ident => $file:literal,)*) => {
        $(#[test] fn $test() { run_script($file); })*

        /// Every script in testdata has a test, so none is skipped silently.
        #[test]
        fn every_script_runs() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interaction/testdata");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".txt"))
                .collect();
            on_disk.sort();
            let mut listed = vec![$($file.to_string()),*];
            listed.sort();
            assert_eq!(on_disk, listed, "list each script of {} in tests/interaction.rs", dir.display());
        }
    };
}

scripts! {
    three_members_elect_commit_and_apply => "three_members_elect_commit_and_apply.txt",
    a_new_leader_keeps_what_was_committed => "a_new_leader_keeps_what_was_committed.txt",
    a_lost_record_does_not_hold_back_unrelated_ones => "a_lost_record_does_not_hold_back_unrelated_ones.txt",
    a_one_member_cluster_keeps_leading => "a_one_member_cluster_keeps_leading.txt",
    a_restarted_replica_sits_out_one_lease => "a_restarted_replica_sits_out_one_lease.txt",
    a_follower_refuses_other_ballots_for_a_lease => "a_follower_refuses_other_ballots_for_a_lease.txt",
    a_candidate_installs_a_voters_snapshot_before_merging => "a_candidate_installs_a_voters_snapshot_before_merging.txt",
    a_snapshot_tail_survives_a_leader_change_floor => "a_snapshot_tail_survives_a_leader_change_floor.txt",
    a_snapshot_tail_survives_a_leader_change_compaction => "a_snapshot_tail_survives_a_leader_change_compaction.txt",
    a_follower_gets_the_new_leaders_record_at_a_seq_its_old_log_held =>
        "a_follower_gets_the_new_leaders_record_at_a_seq_its_old_log_held.txt",
    a_leader_hands_over_without_waiting_out_its_lease => "a_leader_hands_over_without_waiting_out_its_lease.txt",
}
