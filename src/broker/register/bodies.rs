//! The bodies of one registration round: each encoded at most once, on first use, off the
//! async thread, and shared (`Bytes`) by every NameServer that sends it.
//!
//! A whole body (plain or in a compressed form) is kept for the round. Split batches are not:
//! each NameServer walks the batches with a [`BatchCursor`]; a batch is encoded when the first
//! NameServer asks for it and kept only while another one still on its way to it is at most
//! [`KEEP_BEHIND`] batches behind the leader. NameServers answering at about the same pace
//! share every batch and the round holds about one batch's body; one that falls further
//! behind encodes its own copy when it gets there (CPU, not memory), and no NameServer ever
//! waits for another.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::broker::body::TopicConfigWrapper;
use crate::broker::error::ApiError;
use crate::broker::register::encode::{self, Encoded};
use crate::broker::register::plan::CompressionForm;
use crate::poison::lock;

/// How many batches behind the leader a batch is still kept for a slower NameServer.
const KEEP_BEHIND: usize = 1;

/// The bodies of one round (cheap to clone: one `Arc`).
#[derive(Clone)]
pub struct RoundBodies(Arc<Inner>);

struct Inner {
    topics: Arc<TopicConfigWrapper>,
    /// Index 0: plain JSON; then one per [`CompressionForm`].
    whole: [OnceLock<Encoded>; 4],
    plain_len: OnceLock<usize>,
    batches: Mutex<Batches>,
}

/// Where the NameServers sending batches are, and the batches kept for them.
#[derive(Default)]
struct Batches {
    /// Per batch size: the first topic of each batch.
    starts: Vec<(usize, Arc<OnceLock<Vec<String>>>)>,
    /// Per cursor: its batch size and the index of the next batch it takes; None once gone.
    cursors: Vec<Option<(usize, usize)>>,
    /// By (batch size, index): batches encoded, or being encoded, for a cursor yet to take them.
    kept: BTreeMap<(usize, usize), Arc<OnceLock<Encoded>>>,
}

impl Batches {
    /// Drops every batch no cursor will take, or that lags too far behind the leader.
    fn prune(&mut self) {
        let cursors = &self.cursors;
        self.kept.retain(|&(size, i), _| {
            let next = cursors.iter().flatten().filter(|(s, _)| *s == size);
            let lead = next.clone().map(|(_, n)| *n).max().unwrap_or(0);
            next.clone().any(|(_, n)| *n <= i) && i + 1 + KEEP_BEHIND >= lead
        });
    }
}

fn slot(form: Option<CompressionForm>) -> usize {
    form.map_or(0, |f| f as usize + 1)
}

/// A blocking encoder that ended without a result (it panicked: a bug).
fn task_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError::Task {
        what: "register body",
        source: Arc::new(e),
    }
}

impl RoundBodies {
    /// Bodies of `topics`, none encoded yet.
    pub fn new(topics: Arc<TopicConfigWrapper>) -> Self {
        RoundBodies(Arc::new(Inner {
            topics,
            whole: Default::default(),
            plain_len: OnceLock::new(),
            batches: Mutex::default(),
        }))
    }

    /// The table.
    pub fn topics(&self) -> &TopicConfigWrapper {
        &self.0.topics
    }

    /// The whole table in `form` (None: plain JSON). Encoding (and compressing) a large table
    /// takes long enough to stall an async worker, so it runs on a blocking thread; a second
    /// NameServer of the same form waits there for the first one's result instead of encoding
    /// again.
    pub(crate) async fn whole(&self, form: Option<CompressionForm>) -> Encoded {
        if let Some(done) = self.0.whole[slot(form)].get() {
            return done.clone();
        }
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.whole_here(form)).await {
            Ok(b) => b,
            // The encoder panicked (a bug): encode here rather than not register at all.
            Err(_) => self.whole_here(form),
        }
    }

    fn whole_here(&self, form: Option<CompressionForm>) -> Encoded {
        self.0.whole[slot(form)]
            .get_or_init(|| match form {
                None => encode::plain(&self.0.topics),
                Some(f) => encode::compressed(&self.0.topics, f),
            })
            .clone()
    }

    /// Length of the whole plain body, counted once per round without encoding it.
    pub(crate) async fn plain_len(&self) -> Result<usize, ApiError> {
        if let Some(n) = self.0.plain_len.get() {
            return Ok(*n);
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            *me.0
                .plain_len
                .get_or_init(|| encode::plain_len(&me.0.topics))
        })
        .await
        .map_err(task_failed)
    }

    /// A walk through the table's batches of `size` topics, from the first.
    pub(crate) fn batches(&self, size: usize) -> BatchCursor {
        let size = size.max(1);
        let mut b = lock(&self.0.batches);
        let starts = match b.starts.iter().find(|(s, _)| *s == size) {
            Some((_, starts)) => starts.clone(),
            None => {
                let starts = Arc::new(OnceLock::new());
                b.starts.push((size, starts.clone()));
                starts
            }
        };
        let id = match b.cursors.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                b.cursors.push(None);
                b.cursors.len() - 1
            }
        };
        b.cursors[id] = Some((size, 0));
        BatchCursor {
            round: self.clone(),
            id,
            size,
            starts,
            next: 0,
        }
    }

    /// Batches kept right now (for tests).
    #[cfg(test)]
    fn kept(&self) -> Vec<(usize, usize)> {
        lock(&self.0.batches).kept.keys().copied().collect()
    }
}

/// One NameServer's walk through the batches; its place is given up when dropped (done,
/// failed or timed out), so that nothing is kept for it any more.
pub(crate) struct BatchCursor {
    round: RoundBodies,
    id: usize,
    size: usize,
    starts: Arc<OnceLock<Vec<String>>>,
    next: usize,
}

impl BatchCursor {
    /// How many batches there are.
    pub(crate) async fn count(&self) -> Result<usize, ApiError> {
        Ok(self.starts().await?.len())
    }

    async fn starts(&self) -> Result<&[String], ApiError> {
        if self.starts.get().is_none() {
            let (round, starts, size) = (self.round.clone(), self.starts.clone(), self.size);
            tokio::task::spawn_blocking(move || {
                starts.get_or_init(|| encode::batch_starts(round.topics(), size));
            })
            .await
            .map_err(task_failed)?;
        }
        Ok(self.starts.get().map_or(&[], Vec::as_slice))
    }

    /// The next batch's body; None after the last.
    pub(crate) async fn next(&mut self) -> Result<Option<Encoded>, ApiError> {
        let (i, size) = (self.next, self.size);
        let Some(start) = self.starts().await?.get(i).cloned() else {
            return Ok(None);
        };
        self.next += 1;
        let cell = {
            let mut b = lock(&self.round.0.batches);
            let cell = b.kept.entry((size, i)).or_default().clone();
            b.cursors[self.id] = Some((size, i + 1));
            b.prune();
            cell
        };
        if let Some(done) = cell.get() {
            return Ok(Some(done.clone()));
        }
        let round = self.round.clone();
        let capacity = round.0.plain_len.get().map_or(0, |len| {
            // The whole body's bytes per topic, with room for longer names: a batch that
            // outgrows its buffer is copied once into one twice as large.
            len.div_ceil(round.topics().topic_config_table.len().max(1)) * size / 4 * 5 + 1024
        });
        tokio::task::spawn_blocking(move || {
            cell.get_or_init(|| encode::batch(round.topics(), &start, size, capacity))
                .clone()
        })
        .await
        .map(Some)
        .map_err(task_failed)
    }
}

impl Drop for BatchCursor {
    fn drop(&mut self) {
        let mut b = lock(&self.round.0.batches);
        if let Some(c) = b.cursors.get_mut(self.id) {
            *c = None;
        }
        b.prune();
    }
}

#[cfg(test)]
mod tests;
