//! [`RotationTimer`]: tells a stream actor that one of its recordings is due for rotation.
//!
//! One per recording when `max_recording_seconds > 0`. It owns nothing but its timer: after
//! the configured time it sends the stream actor a rotation request for its recording and
//! stops. The stream actor spawns it linked and stops it when the recording closes; it is
//! never restarted (a new recording gets a new timer). Tests fire it early with
//! [`RotationTimerMsg::Fire`] instead of waiting.
//!
//! Mailbox: unbounded; it receives at most one timer message and one `Fire`.

use crate::stream::{StreamInternal, StreamMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use std::time::Duration;

/// The rotation timer actor (one per rotating recording).
pub struct RotationTimer;

/// Messages to a rotation timer.
#[derive(RactorMessage)]
pub enum RotationTimerMsg {
    /// The time is up (sent by the timer itself, or early by a test hook).
    Fire,
}

/// What a rotation timer starts from.
pub struct RotationTimerArgs {
    /// The stream actor to notify.
    pub(crate) stream: ActorRef<StreamMsg>,
    /// The stream actor's number for the recording.
    pub(crate) recording: u64,
    /// How long the recording may run.
    pub(crate) after: Duration,
}

/// A running rotation timer.
pub struct RotationTimerState {
    stream: ActorRef<StreamMsg>,
    recording: u64,
    /// The pending `send_after`; aborted when the timer is stopped early.
    timer: ractor::concurrency::JoinHandle<Result<(), ractor::MessagingErr<RotationTimerMsg>>>,
}

impl Actor for RotationTimer {
    type Msg = RotationTimerMsg;
    type State = RotationTimerState;
    type Arguments = RotationTimerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RotationTimerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let timer = myself.send_after(args.after, || RotationTimerMsg::Fire);
        Ok(RotationTimerState {
            stream: args.stream,
            recording: args.recording,
            timer,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RotationTimerMsg::Fire => {
                let msg = StreamMsg::Internal(StreamInternal::rotate(state.recording));
                // The stream actor outlives its children; if it is gone there is nothing to rotate.
                let _ = state.stream.cast(msg);
                myself.stop(Some("fired".into()));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.timer.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::stream_actor::Internal;
    use ractor::concurrency::{oneshot, OneshotSender};
    use std::sync::Mutex;

    /// Stands in for a stream actor: forwards the first rotation request it gets.
    struct FakeStream;

    impl Actor for FakeStream {
        type Msg = StreamMsg;
        type State = Mutex<Option<OneshotSender<u64>>>;
        type Arguments = OneshotSender<u64>;

        async fn pre_start(
            &self,
            _: ActorRef<Self::Msg>,
            tx: OneshotSender<u64>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(Mutex::new(Some(tx)))
        }

        async fn handle(
            &self,
            _: ActorRef<Self::Msg>,
            msg: Self::Msg,
            state: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let StreamMsg::Internal(StreamInternal(Internal::Rotate(id))) = msg {
                if let Some(tx) = state.get_mut().unwrap().take() {
                    let _ = tx.send(id);
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_rotation_timer_asks_its_stream_to_rotate_when_time_is_up() {
        let (tx, rx) = oneshot();
        let (stream, _) = Actor::spawn(None, FakeStream, tx).await.unwrap();
        let args = RotationTimerArgs {
            stream: stream.clone(),
            recording: 7,
            after: Duration::from_millis(50),
        };
        let (_timer, handle) = Actor::spawn(None, RotationTimer, args).await.unwrap();
        let id = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the timer fired in time")
            .unwrap();
        assert_eq!(id, 7);
        // It stops after firing.
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .unwrap()
            .unwrap();
        stream.stop(None);
    }
}
