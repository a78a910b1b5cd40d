//! The upload queue's bookkeeping, without I/O: which job may start next.
//!
//! Every job has an `id` (its identity, from its first enqueue) and a `seq` (its place in
//! the queue; enqueueing the same local path again while it waits moves it to the tail,
//! giving it a new `seq` but keeping its `id`). Both come from one counter.
//!
//! Jobs are grouped by record dir, the parent of their key. A *barrier* (a key whose file
//! name is `manifest.mpd` or `session.json`) may start only when every job of its group
//! enqueued before it is stored. Other jobs start in `seq` order as workers free up, in
//! parallel across and within groups. A failed job waits out its backoff without holding
//! anything but the barriers behind it in its own group.
//!
//! "Enqueued before" is measured with a job's *blocking key*: its `id` for an ordinary
//! job (an init segment enqueued at the start of a recording and again at its end still
//! goes before every manifest written in between) and its `seq` for a barrier (the final
//! session.json, enqueued first when the recording started, does not hold back the
//! manifests written since). Barrier B waits for every other job of its group whose
//! blocking key is below B's `seq`. Two barriers can never wait for each other, since each
//! compares the other's `seq` with its own.
//!
//! A job is in one place: `Persisting` (its row is not yet committed; it may not start),
//! `Ready`, `Delayed` (backing off), `Blocked` (a barrier waiting for its group) or
//! `InFlight`. Every operation is O(log n) in the number of jobs.

use crate::state_store::UploadRow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// File names that start only after everything before them in their group is stored.
const BARRIERS: [&str; 2] = ["manifest.mpd", "session.json"];

/// The first retry waits about this long; each further one doubles it.
pub(crate) const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Persisting,
    Ready,
    Delayed(Instant),
    Blocked,
    InFlight,
}

/// One job and its scheduling state.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The row as stored.
    pub(crate) row: UploadRow,
    /// The record dir (the key's parent, "" for a top-level key).
    group: String,
    /// Whether the job waits for its group (see the module docs).
    barrier: bool,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    place: Place,
}

#[derive(Debug, Default)]
struct Group {
    /// The group's unfinished jobs as (blocking key, id).
    outstanding: BTreeSet<(u64, u64)>,
    /// Barriers waiting for the group, by seq.
    blocked: BTreeMap<u64, u64>,
}

/// The group (record dir) of a key and whether it is a barrier.
fn classify(key: &str) -> (String, bool) {
    let (group, name) = key.rsplit_once('/').unwrap_or(("", key));
    (group.to_string(), BARRIERS.contains(&name))
}

/// The wait before retry `attempt` (1-based): doubling from [`BACKOFF_INITIAL`], capped at
/// `max`, of which a random half is jitter so many jobs and nodes do not retry in step.
pub(crate) fn backoff(attempt: u32, max: Duration) -> Duration {
    let exp = BACKOFF_INITIAL.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let full = exp.min(max);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// What [`UploadQueue::enqueue`] did.
#[derive(Debug)]
pub(crate) struct Enqueued {
    /// The row to persist.
    pub(crate) row: UploadRow,
    /// True for a new job (it starts once the row is committed); false when a waiting
    /// job with the same local path was moved to the tail.
    pub(crate) new: bool,
}

/// The queue (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct UploadQueue {
    jobs: HashMap<u64, Job>,
    /// The waiting (not in flight) job of each local path.
    by_local: HashMap<PathBuf, u64>,
    groups: HashMap<String, Group>,
    /// Jobs that may start now, by seq.
    ready: BTreeMap<u64, u64>,
    /// Jobs backing off, by (due time, seq).
    delayed: BTreeMap<(Instant, u64), u64>,
    /// Ids of all unfinished jobs (for drains and the oldest job).
    outstanding: BTreeSet<u64>,
    in_flight: usize,
    persisting: usize,
    /// The next id/seq.
    next: u64,
}

impl UploadQueue {
    /// A queue holding the rows left in the store, in their order; their ids and seqs are
    /// kept and new ones continue above them.
    pub(crate) fn load(rows: Vec<UploadRow>, now: Instant) -> UploadQueue {
        let mut queue = UploadQueue {
            next: 1,
            ..UploadQueue::default()
        };
        for row in rows {
            queue.next = queue.next.max(row.id.max(row.seq) + 1);
            let id = row.id;
            if queue.jobs.contains_key(&id) {
                continue;
            }
            queue.insert(row, Place::Persisting);
            queue.persisted(id, now);
        }
        queue
    }

    fn insert(&mut self, row: UploadRow, place: Place) {
        let (group, barrier) = classify(&row.key);
        let id = row.id;
        self.by_local.entry(row.local.clone()).or_insert(id);
        self.outstanding.insert(id);
        if place == Place::Persisting {
            self.persisting += 1;
        }
        let job = Job {
            row,
            group,
            barrier,
            attempts: 0,
            place,
        };
        self.groups
            .entry(job.group.clone())
            .or_default()
            .outstanding
            .insert((job.blocking_key(), id));
        self.jobs.insert(id, job);
    }

    /// Accepts a job: a new one (it waits for [`UploadQueue::persisted`]), or, when the
    /// local path already waits, that job moved to the tail with the new key and
    /// `delete_after`.
    pub(crate) fn enqueue(
        &mut self,
        local: PathBuf,
        key: String,
        delete_after: bool,
        now_ms: u64,
        now: Instant,
    ) -> Enqueued {
        let seq = self.next;
        self.next += 1;
        if let Some(id) = self.by_local.get(&local).copied() {
            if self
                .jobs
                .get(&id)
                .is_some_and(|j| j.place != Place::InFlight)
            {
                self.unplace(id);
                let (group, barrier) = classify(&key);
                let job = self.jobs.get_mut(&id).expect("checked above");
                let old_key = job.blocking_key();
                let old_group = std::mem::replace(&mut job.group, group.clone());
                job.barrier = barrier;
                job.row.seq = seq;
                job.row.key = key;
                job.row.delete_after = delete_after;
                let row = job.row.clone();
                let new_key = job.blocking_key();
                let persisting = job.place == Place::Persisting;
                // Its blocking key may have risen: a barrier it held may go now.
                self.leave_group(&old_group, (old_key, id));
                self.groups
                    .entry(group)
                    .or_default()
                    .outstanding
                    .insert((new_key, id));
                if !persisting {
                    self.schedule(id, now);
                }
                return Enqueued { row, new: false };
            }
        }
        let row = UploadRow {
            id: seq,
            seq,
            local,
            key,
            delete_after,
            enqueued_at_ms: now_ms,
        };
        self.by_local.remove(&row.local);
        self.insert(row.clone(), Place::Persisting);
        Enqueued { row, new: true }
    }

    /// The job's row is committed: it may start.
    pub(crate) fn persisted(&mut self, id: u64, now: Instant) {
        if self
            .jobs
            .get(&id)
            .is_some_and(|j| j.place == Place::Persisting)
        {
            self.persisting -= 1;
            self.schedule(id, now);
        }
    }

    /// Takes the job out of the ready/delayed/blocked structures (not out of its group).
    fn unplace(&mut self, id: u64) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let seq = job.row.seq;
        match job.place {
            Place::Ready => {
                self.ready.remove(&seq);
            }
            Place::Delayed(at) => {
                self.delayed.remove(&(at, seq));
            }
            Place::Blocked => {
                if let Some(g) = self.groups.get_mut(&job.group) {
                    g.blocked.remove(&seq);
                }
            }
            Place::Persisting | Place::InFlight => {}
        }
    }

    /// Whether barrier `id` must still wait for an earlier job of its group.
    fn is_blocked(&self, id: u64) -> bool {
        let Some(job) = self.jobs.get(&id) else {
            return false;
        };
        job.barrier
            && self.groups.get(&job.group).is_some_and(|g| {
                g.outstanding
                    .range(..(job.row.seq, 0))
                    .any(|&(_, other)| other != id)
            })
    }

    /// Puts a waiting job where it belongs now: delayed, blocked or ready.
    fn schedule(&mut self, id: u64, now: Instant) {
        let blocked = self.is_blocked(id);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let seq = job.row.seq;
        job.place = match job.place {
            Place::Delayed(at) if at > now => Place::Delayed(at),
            _ if blocked => Place::Blocked,
            _ => Place::Ready,
        };
        match job.place {
            Place::Delayed(at) => {
                self.delayed.insert((at, seq), id);
            }
            Place::Blocked => {
                self.groups
                    .entry(job.group.clone())
                    .or_default()
                    .blocked
                    .insert(seq, id);
            }
            _ => {
                self.ready.insert(seq, id);
            }
        }
    }

    /// Removes `entry` (blocking key, id) from `group` and lets the group's first blocked
    /// barrier go if it may.
    fn leave_group(&mut self, group: &str, entry: (u64, u64)) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.outstanding.remove(&entry);
        if g.outstanding.is_empty() {
            self.groups.remove(group);
            return;
        }
        // Later barriers wait for this one too, so only the first can be freed.
        let first = g.blocked.first_key_value().map(|(&seq, &id)| (seq, id));
        if let Some((seq, barrier)) = first {
            if !self.is_blocked(barrier) {
                if let Some(g) = self.groups.get_mut(group) {
                    g.blocked.remove(&seq);
                }
                if let Some(job) = self.jobs.get_mut(&barrier) {
                    job.place = Place::Ready;
                }
                self.ready.insert(seq, barrier);
            }
        }
    }

    /// Moves backed-off jobs whose time has come to where they belong.
    fn promote_due(&mut self, now: Instant) {
        while let Some((&(at, seq), &id)) = self.delayed.first_key_value() {
            if at > now {
                break;
            }
            self.delayed.remove(&(at, seq));
            if let Some(job) = self.jobs.get_mut(&id) {
                job.place = Place::Ready;
            }
            self.schedule(id, now);
        }
    }

    /// The next job to start, marked in flight; `None` if none may start now.
    pub(crate) fn start_next(&mut self, now: Instant) -> Option<&Job> {
        self.promote_due(now);
        let (_, id) = self.ready.pop_first()?;
        let job = self
            .jobs
            .get_mut(&id)
            .expect("invariant: ready ids are jobs");
        job.place = Place::InFlight;
        self.in_flight += 1;
        if self.by_local.get(&job.row.local) == Some(&id) {
            self.by_local.remove(&job.row.local);
        }
        Some(job)
    }

    /// The job is done (stored, or its file vanished): it leaves the queue.
    pub(crate) fn finish(&mut self, id: u64) -> Option<Job> {
        self.unplace(id);
        let job = self.jobs.remove(&id)?;
        match job.place {
            Place::InFlight => self.in_flight -= 1,
            Place::Persisting => self.persisting -= 1,
            _ => {}
        }
        if self.by_local.get(&job.row.local) == Some(&id) {
            self.by_local.remove(&job.row.local);
        }
        self.outstanding.remove(&id);
        self.leave_group(&job.group, (job.blocking_key(), id));
        Some(job)
    }

    /// The in-flight job failed: it backs off and returns to the queue. Returns the wait.
    pub(crate) fn fail(&mut self, id: u64, now: Instant, max_backoff: Duration) -> Duration {
        let Some(job) = self.jobs.get_mut(&id) else {
            return Duration::ZERO;
        };
        if job.place == Place::InFlight {
            self.in_flight -= 1;
        }
        job.attempts += 1;
        let delay = backoff(job.attempts, max_backoff);
        job.place = Place::Delayed(now + delay);
        let local = job.row.local.clone();
        self.by_local.entry(local).or_insert(id);
        self.schedule(id, now);
        delay
    }

    /// A job by id.
    pub(crate) fn get(&self, id: u64) -> Option<&Job> {
        self.jobs.get(&id)
    }

    /// When the earliest backed-off job is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.delayed.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Whether a job may start now (or is due now).
    pub(crate) fn has_ready(&self, now: Instant) -> bool {
        !self.ready.is_empty() || self.next_due().is_some_and(|at| at <= now)
    }

    /// The highest id given out so far: a drain waits for every job up to it.
    pub(crate) fn last_id(&self) -> u64 {
        self.next.saturating_sub(1)
    }

    /// Whether no job with an id up to `upto` is unfinished.
    pub(crate) fn done_up_to(&self, upto: u64) -> bool {
        self.outstanding.first().is_none_or(|&first| first > upto)
    }

    /// Unfinished jobs whose rows are committed (waiting or in flight).
    pub(crate) fn queued(&self) -> usize {
        self.jobs.len() - self.persisting
    }

    /// Jobs being uploaded now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// When the oldest unfinished job was first enqueued (unix ms).
    pub(crate) fn oldest_enqueued_ms(&self) -> Option<u64> {
        let first = self.outstanding.first()?;
        self.jobs.get(first).map(|j| j.row.enqueued_at_ms)
    }
}

impl Job {
    /// Whether the job is a barrier.
    #[cfg(test)]
    fn is_barrier(&self) -> bool {
        self.barrier
    }

    /// What barriers of its group compare with their `seq` (see the module docs).
    fn blocking_key(&self) -> u64 {
        if self.barrier {
            self.row.seq
        } else {
            self.row.id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enqueue(q: &mut UploadQueue, key: &str, now: Instant) -> u64 {
        let e = q.enqueue(
            PathBuf::from(format!("/spool/{key}")),
            key.into(),
            true,
            0,
            now,
        );
        q.persisted(e.row.id, now);
        e.row.id
    }

    fn drain_ready(q: &mut UploadQueue, now: Instant) -> Vec<String> {
        let mut keys = Vec::new();
        while let Some(job) = q.start_next(now) {
            keys.push(job.row.key.clone());
        }
        keys
    }

    #[test]
    fn a_barrier_waits_for_every_earlier_job_of_its_group_only() {
        let now = Instant::now();
        let mut q = UploadQueue::default();
        let s1 = enqueue(&mut q, "a/1/v_seg_0001.m4s", now);
        let m1 = enqueue(&mut q, "a/1/manifest.mpd", now);
        let s2 = enqueue(&mut q, "a/1/v_seg_0002.m4s", now);
        let other = enqueue(&mut q, "b/1/manifest.mpd", now);
        assert!(q.get(m1).unwrap().is_barrier());
        // The manifest of a/1 waits for segment 1; segment 2 and b's manifest do not wait.
        assert_eq!(
            drain_ready(&mut q, now),
            [
                "a/1/v_seg_0001.m4s",
                "a/1/v_seg_0002.m4s",
                "b/1/manifest.mpd"
            ]
        );
        q.finish(other);
        q.finish(s2);
        assert!(q.start_next(now).is_none(), "segment 1 is still in flight");
        q.finish(s1);
        assert_eq!(drain_ready(&mut q, now), ["a/1/manifest.mpd"]);
        q.finish(m1);
        assert!(q.done_up_to(q.last_id()));
    }

    #[test]
    fn a_failed_job_backs_off_and_holds_only_its_groups_later_barrier() {
        let now = Instant::now();
        let max = Duration::from_secs(2);
        let mut q = UploadQueue::default();
        let seg = enqueue(&mut q, "a/1/v_seg_0001.m4s", now);
        let manifest = enqueue(&mut q, "a/1/manifest.mpd", now);
        let other = enqueue(&mut q, "b/1/v_seg_0001.m4s", now);
        assert_eq!(q.start_next(now).unwrap().row.id, seg);
        let delay = q.fail(seg, now, max);
        assert!(delay <= BACKOFF_INITIAL);
        // b proceeds; the manifest of a waits; the failed segment waits out its backoff.
        assert_eq!(drain_ready(&mut q, now), ["b/1/v_seg_0001.m4s"]);
        q.finish(other);
        assert_eq!(q.next_due(), Some(now + delay));
        let later = now + delay;
        assert_eq!(drain_ready(&mut q, later), ["a/1/v_seg_0001.m4s"]);
        q.finish(seg);
        assert_eq!(drain_ready(&mut q, later), ["a/1/manifest.mpd"]);
        q.finish(manifest);
        assert!(q.done_up_to(q.last_id()));
    }

    #[test]
    fn a_waiting_path_enqueued_again_moves_to_the_tail_and_keeps_its_identity() {
        let now = Instant::now();
        let mut q = UploadQueue::default();
        let first = q.enqueue(
            "/spool/a/1/v_init.m4s".into(),
            "a/1/v_init.m4s".into(),
            false,
            7,
            now,
        );
        q.persisted(first.row.id, now);
        let seg = enqueue(&mut q, "a/1/v_seg_0001.m4s", now);
        let again = q.enqueue(
            "/spool/a/1/v_init.m4s".into(),
            "a/1/v_init.m4s".into(),
            true,
            9,
            now,
        );
        assert!(!again.new);
        assert_eq!(again.row.id, first.row.id);
        assert!(again.row.seq > seg && again.row.delete_after);
        assert_eq!(again.row.enqueued_at_ms, 7);
        assert_eq!(
            drain_ready(&mut q, now),
            ["a/1/v_seg_0001.m4s", "a/1/v_init.m4s"]
        );
        // In flight now: a further enqueue is a new job.
        let third = q.enqueue(
            "/spool/a/1/v_init.m4s".into(),
            "a/1/v_init.m4s".into(),
            true,
            10,
            now,
        );
        assert!(third.new);
        assert_eq!(q.queued(), 2, "the new row is not committed yet");
    }

    #[test]
    fn a_barrier_enqueued_again_waits_for_what_came_before_its_new_place() {
        let now = Instant::now();
        let mut q = UploadQueue::default();
        let session = enqueue(&mut q, "a/1/session.json", now);
        let seg = enqueue(&mut q, "a/1/v_seg_0001.m4s", now);
        // Final session.json: moved behind the segment.
        let again = q.enqueue(
            "/spool/a/1/session.json".into(),
            "a/1/session.json".into(),
            true,
            0,
            now,
        );
        assert_eq!(again.row.id, session);
        assert_eq!(drain_ready(&mut q, now), ["a/1/v_seg_0001.m4s"]);
        q.finish(seg);
        assert_eq!(drain_ready(&mut q, now), ["a/1/session.json"]);
    }

    #[test]
    fn a_session_json_enqueued_again_does_not_hold_back_the_manifests_before_it() {
        let now = Instant::now();
        let mut q = UploadQueue::default();
        // session.json (recording) and a live manifest wait behind the init segment.
        let init = enqueue(&mut q, "a/1/v_init.m4s", now);
        let session = enqueue(&mut q, "a/1/session.json", now);
        let seg = enqueue(&mut q, "a/1/v_seg_0001.m4s", now);
        let manifest = enqueue(&mut q, "a/1/manifest.mpd", now);
        assert_eq!(
            drain_ready(&mut q, now),
            ["a/1/v_init.m4s", "a/1/v_seg_0001.m4s"]
        );
        // The recording closes: the final session.json goes to the tail.
        q.enqueue(
            "/spool/a/1/session.json".into(),
            "a/1/session.json".into(),
            true,
            0,
            now,
        );
        q.finish(init);
        assert!(
            q.start_next(now).is_none(),
            "the manifest waits for segment 1"
        );
        q.finish(seg);
        assert_eq!(drain_ready(&mut q, now), ["a/1/manifest.mpd"]);
        q.finish(manifest);
        assert_eq!(drain_ready(&mut q, now), ["a/1/session.json"]);
        q.finish(session);
        assert!(q.done_up_to(q.last_id()));
    }

    #[test]
    fn jobs_not_yet_committed_do_not_start_but_drains_wait_for_them() {
        let now = Instant::now();
        let mut q = UploadQueue::default();
        let e = q.enqueue("/spool/x".into(), "x".into(), true, 0, now);
        assert!(q.start_next(now).is_none());
        assert!(!q.done_up_to(q.last_id()));
        q.persisted(e.row.id, now);
        assert_eq!(q.start_next(now).unwrap().row.key, "x");
        assert_eq!(q.in_flight(), 1);
        q.finish(e.row.id);
        assert!(q.done_up_to(q.last_id()));
    }

    #[test]
    fn loaded_rows_keep_their_order_and_new_ids_continue_above_them() {
        let now = Instant::now();
        let row = |id, seq, key: &str| UploadRow {
            id,
            seq,
            local: PathBuf::from(format!("/spool/{key}")),
            key: key.into(),
            delete_after: true,
            enqueued_at_ms: 100 + id,
        };
        let mut q = UploadQueue::load(
            vec![
                row(3, 3, "a/1/v_seg_0002.m4s"),
                row(1, 4, "a/1/v_init.m4s"),
                row(5, 5, "a/1/manifest.mpd"),
            ],
            now,
        );
        assert_eq!(q.oldest_enqueued_ms(), Some(101));
        assert_eq!(
            drain_ready(&mut q, now),
            ["a/1/v_seg_0002.m4s", "a/1/v_init.m4s"]
        );
        let e = q.enqueue("/spool/n".into(), "n".into(), true, 0, now);
        assert_eq!(e.row.id, 6);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let cap = Duration::from_secs(30);
        for attempt in 1..100 {
            let d = backoff(attempt, cap);
            let full = BACKOFF_INITIAL
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(cap);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(1000, cap) <= cap);
    }
}
