//! The embedded runtime's start path with real data directories: whether a
//! member comes up fresh (may vote at once) or restarted (keeps `VotedFor`,
//! refuses votes for a lease, rule 2) decides whether a crash can make it
//! vote twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use traftctl::node::{self, Listeners, NodeConfig, NodeHandle};
use traftctl::pb::t_raft_client::TRaftClient;
use traftctl::pb::{ClusterConfig, LeaderId, TailBitmap, VoteRefusal, VoteReply, VoteReq};

/// The quiet period of a restarted member. Far longer than the test takes,
/// so a refusal for this reason cannot expire mid-test.
const LEASE_NS: u64 = 60_000_000_000;

/// Member 1 of a three-member cluster whose other members never answer, so
/// the only votes it sees are the test's.
async fn start(dir: &Path) -> NodeHandle {
    let listener = node::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config =
        ClusterConfig::majority([(1, addr.to_string()), (2, "127.0.0.1:1".into()), (3, "127.0.0.1:1".into())]).unwrap();
    let mut cfg = NodeConfig::new(1, config, dir.to_path_buf());
    cfg.options.lease_ns = LEASE_NS;
    // Its own campaign would change `VotedFor` under the test.
    cfg.options.election_jitter_ns = 1 << 60;
    node::start(cfg, Listeners { client: listener, peer: None }).await.unwrap()
}

async fn ask_vote(node: &NodeHandle, candidate: LeaderId) -> VoteReply {
    let mut client = TRaftClient::connect(format!("http://{}", node.addr)).await.unwrap();
    let req = VoteReq {
        candidate: Some(candidate),
        committer: None,
        accepted: Some(TailBitmap::empty()),
        ..Default::default()
    };
    let reply = tokio::time::timeout(Duration::from_secs(10), client.vote(req)).await.expect("no vote reply");
    reply.unwrap().into_inner()
}

async fn voted_for(node: &NodeHandle) -> Option<LeaderId> {
    node.status().await.unwrap().status.voted_for
}

#[tokio::test]
async fn a_restarted_member_keeps_its_vote_and_sits_out_a_lease() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node-1");

    // A directory that does not exist yet: fresh, so it votes at once.
    let n = start(&dir).await;
    let first = LeaderId::new(5, 2);
    let reply = ask_vote(&n, first).await;
    assert!(reply.granted, "a fresh member refused a vote: {reply:?}");
    n.shutdown().await;

    // The same directory, now holding that vote: restarted.
    let n = start(&dir).await;
    let second = LeaderId::new(6, 3);
    let reply = ask_vote(&n, second).await;
    assert!(
        !reply.granted,
        "a restarted member granted {second} within a lease of starting; it may have voted or acknowledged a leader before the crash: {reply:?}"
    );
    assert_eq!(reply.refusal(), VoteRefusal::Restarting, "{reply:?}");
    assert_eq!(voted_for(&n).await, Some(first), "a restarted member forgot its vote");
    n.shutdown().await;
}

/// What a crash during the very first start can leave: the directory alone,
/// or also the lock file and the first segment, empty, with no format marker
/// yet (see the storage's `initialise`). No write was ever durable there, so
/// the member never promised anything and may vote at once (the argument is
/// at `restored_state` in src/node/mod.rs).
#[tokio::test]
async fn a_member_whose_first_start_never_finished_is_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let layouts: [(&str, &[&str]); 3] =
        [("empty", &[]), ("locked", &["LOCK"]), ("half-initialised", &["LOCK", "wal-00000001.log", "FORMAT.tmp"])];
    for (name, files) in layouts {
        let dir: PathBuf = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for f in files {
            std::fs::File::create(dir.join(f)).unwrap();
        }
        let n = start(&dir).await;
        assert_eq!(voted_for(&n).await, None, "{name}");
        let reply = ask_vote(&n, LeaderId::new(5, 2)).await;
        assert!(reply.granted, "{name}: a member that never wrote anything refused a vote: {reply:?}");
        n.shutdown().await;
    }
}
