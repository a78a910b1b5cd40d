//! Placement: which node owns a stream.
//!
//! A stream belongs to the node where it is live. That node's [`crate::agent::NodeAgent`]
//! is the member of the process group `stream/{name}` (ractor's `pg`, which
//! ractor_cluster keeps in sync across the sessions: one update per stream that goes
//! live or ends). [`ClusterPlacement`] is the stream supervisor's
//! [`StreamPlacement`]: it refuses a name that has a member on another node, and joins or
//! leaves the group for this node. Both calls only touch the local copy of the groups.
//!
//! Two nodes that accept the same name within the time it takes a group update to cross
//! the cluster (a few milliseconds) both keep it; the API then answers for the first
//! member it finds. A node that leaves drops out of every group with its session.

use ractor::{ActorCell, ActorRef};
use recnode_actors::stream::StreamPlacement;

use crate::agent::NodeAgentMsg;
use crate::Owner;

/// The process group of stream `name`.
pub fn stream_group(name: &str) -> String {
    format!("stream/{name}")
}

/// Who owns `stream` right now: this node first, then another node's agent.
pub fn owner(stream: &str) -> Owner {
    let members = ractor::pg::get_members(&stream_group(stream));
    if members.iter().any(|cell| cell.get_id().is_local()) {
        return Owner::Local;
    }
    match members.into_iter().next() {
        Some(cell) => Owner::Remote(ActorRef::<NodeAgentMsg>::from(cell)),
        None => Owner::Nobody,
    }
}

/// The stream supervisor's placement in a cluster: claims join `stream/{name}` with this
/// node's agent.
pub struct ClusterPlacement {
    agent: ActorCell,
}

impl ClusterPlacement {
    /// A placement that claims streams for `agent` (this node's agent).
    pub fn new(agent: ActorCell) -> Self {
        ClusterPlacement { agent }
    }
}

impl StreamPlacement for ClusterPlacement {
    fn claim(&self, stream: &str) -> Result<(), String> {
        let group = stream_group(stream);
        let elsewhere = ractor::pg::get_members(&group)
            .into_iter()
            .find(|cell| !cell.get_id().is_local());
        if let Some(cell) = elsewhere {
            return Err(format!("node session {}", cell.get_id().node()));
        }
        ractor::pg::join(group, vec![self.agent.clone()]);
        Ok(())
    }

    fn release(&self, stream: &str) {
        ractor::pg::leave(stream_group(stream), vec![self.agent.clone()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};

    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_claimed_stream_is_owned_here_until_it_is_released() {
        let (actor, handle) = Actor::spawn(None, Idle, ()).await.expect("spawn");
        let placement = ClusterPlacement::new(actor.get_cell());
        assert!(matches!(owner("placement-test"), Owner::Nobody));
        placement.claim("placement-test").expect("free name");
        assert!(matches!(owner("placement-test"), Owner::Local));
        // A second local claim (a restart of the same stream) is fine.
        placement.claim("placement-test").expect("own name");
        placement.release("placement-test");
        assert!(matches!(owner("placement-test"), Owner::Nobody));
        actor.stop(None);
        handle.await.expect("stopped");
    }
}
