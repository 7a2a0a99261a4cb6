//! The controls `traftctl local-cluster` offers through its members' admin
//! service: the fault proxy's faults and the members' lives. The process,
//! not the member, carries them out, so any member's client port reaches
//! them, a paused member's included.

use std::sync::Arc;

use crate::pb;

/// What a `local-cluster` process does for `TRaftAdmin.Chaos` and
/// `TRaftAdmin.LocalMember`. A member started without one refuses both.
#[tonic::async_trait]
pub trait LocalControl: Send + Sync + 'static {
    async fn chaos(&self, req: pb::ChaosReq) -> Result<pb::ChaosReply, tonic::Status>;
    async fn member(&self, req: pb::LocalMemberReq) -> Result<pb::LocalMemberReply, tonic::Status>;
}

/// The refusal of `LocalMember` by a member no `local-cluster` started.
pub const NOT_LOCAL: &str = "this endpoint is not a `traftctl local-cluster`";
/// The refusal of `Chaos` by a member without the fault proxy.
pub const NOT_CHAOS: &str = "this endpoint is not a local cluster started with --chaos";

/// A shared [`LocalControl`], for [`NodeConfig`](super::NodeConfig).
#[derive(Clone)]
pub struct LocalControlHandle(pub Arc<dyn LocalControl>);

impl std::fmt::Debug for LocalControlHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalControl")
    }
}
