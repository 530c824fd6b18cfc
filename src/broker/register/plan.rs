//! The send plan: what one NameServer's registration sends, decided from what is known so far.
//! Pure: the fan-out asks, does the I/O the answer names, and asks again with what it learnt.

use crate::broker::register::options::RegisterOptions;
use crate::broker::register::outcome::SentAs;
use crate::client::PeerInfo;
use crate::protocol::code::VERSION_5_0_0;
use crate::protocol::LanguageCode;

/// Room left for the header when judging whether a body fits in a frame.
pub(crate) const HEADER_ROOM: usize = 16 * 1024;

/// The compressed body forms NameServers accept (PROTOCOL.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionForm {
    /// Rust NameServer: raw deflate, 6-token topic lines, mapping section.
    RawDeflate,
    /// Java 5.x: zlib, 6-token lines, mapping section.
    Zlib5x,
    /// Java 4.x: zlib, 5-token lines, no mapping section.
    Zlib4x,
}

impl CompressionForm {
    /// The form a peer takes, judged from its last reply; None: send uncompressed.
    pub fn for_peer(peer: Option<PeerInfo>) -> Option<Self> {
        let p = peer?;
        match p.language {
            LanguageCode::RUST => Some(CompressionForm::RawDeflate),
            LanguageCode::JAVA if p.version >= VERSION_5_0_0 => Some(CompressionForm::Zlib5x),
            LanguageCode::JAVA => Some(CompressionForm::Zlib4x),
            _ => None,
        }
    }
}

/// What a QUERY_DATA_VERSION sent during this exchange came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// None sent yet.
    Not,
    /// Sent, without an answer (unreachable, timed out): the peer's form stays unknown.
    NoAnswer,
    /// Answered; `current`: the NameServer holds our data version and reports no change.
    Answered {
        /// The NameServer holds this data version already.
        current: bool,
    },
}

/// What is known about one NameServer's exchange so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Language and version from the NameServer's last reply, if any.
    pub(crate) peer: Option<PeerInfo>,
    /// The QUERY_DATA_VERSION of this exchange.
    pub(crate) asked: Asked,
    /// Topics in the table.
    pub(crate) topics: usize,
    /// Length of the whole plain JSON body, once measured.
    pub(crate) plain_len: Option<usize>,
    /// Whether the NameServer deletes, at each registration, the broker's topics not in it
    /// (5.1.4+ `deleteTopicWithBrokerRegistration`): each batch of a split would delete the
    /// others'.
    pub(crate) deletes: Deletes,
}

/// What a NameServer does with the broker's topics missing from a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletes {
    /// Not asked yet.
    Unknown,
    /// Keeps them (merges batches).
    No,
    /// Deletes them: never split toward it.
    Yes,
}

/// The next thing to do for one NameServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send QUERY_DATA_VERSION (whether the NameServer is current, or which form it takes),
    /// then plan again. Never twice in one exchange.
    Query,
    /// Measure the plain body's length (without encoding it), then plan again.
    MeasurePlain,
    /// Nothing to send: the NameServer holds this data version.
    Current,
    /// One request: plain JSON (`form` None) or compressed in `form`.
    Whole {
        /// The compressed form, or None for plain JSON.
        form: Option<CompressionForm>,
        /// How the outcome reports it.
        sent_as: SentAs,
    },
    /// Plain JSON in consecutive batches of `size` topics.
    Split {
        /// Topics per batch.
        size: usize,
    },
    /// Ask the NameServer's configuration (GET_NAMESRV_CONFIG) before splitting toward it.
    AskConfig,
    /// A split is needed but the NameServer would delete each batch's topics with the next:
    /// nothing can go out.
    Unsplittable,
}

/// The next step for one NameServer's registration, given `facts`.
pub(crate) fn plan(opts: &RegisterOptions, facts: &Facts) -> Step {
    // Any reply also tells the NameServer's language and version, hence its compressed form:
    // one QUERY_DATA_VERSION serves both purposes.
    let check = !opts.force && !opts.oneway;
    let learn_form = opts.compressed && facts.peer.is_none();
    match facts.asked {
        Asked::Not if check || learn_form => return Step::Query,
        Asked::Answered { current: true } if check => return Step::Current,
        // No answer just means: register fully.
        _ => {}
    }
    let form = if opts.compressed {
        CompressionForm::for_peer(facts.peer)
    } else {
        None
    };
    if form.is_some() || facts.topics <= opts.split_size {
        return Step::Whole {
            form,
            sent_as: SentAs::Whole,
        };
    }
    let plain_len = if opts.always_split {
        None
    } else {
        if let Some(step) = plain_if_it_fits(opts, facts) {
            return step;
        }
        facts.plain_len
    };
    // Never send a frame the NameServer refuses: split where batches are kept, compress
    // where they may not be; so learn the form first where it is unknown.
    if facts.peer.is_none() && facts.asked == Asked::Not {
        return Step::Query;
    }
    match (CompressionForm::for_peer(facts.peer), plain_len) {
        (Some(CompressionForm::Zlib4x), _) => Step::Whole {
            form: Some(CompressionForm::Zlib4x),
            sent_as: SentAs::AutoCompressed,
        },
        (_, _) if facts.deletes == Deletes::Unknown => Step::AskConfig,
        (form, _) if facts.deletes == Deletes::Yes => unsplit(opts, facts, form),
        // Rust (measured) and Java 5.x (which splits itself) keep earlier batches; an unknown
        // peer is tried the same way. As few batches as fit: the NameServer's cost per request
        // grows with its whole table (measured: ~0.3 s per request at 150k topics), so 800
        // topics a request (Java's default) only when asked for.
        // Never a batch of one: a Java 5.x NameServer refuses a first registration of exactly
        // one topic (and the Rust one drops it for an id it does not list yet).
        (_, Some(len)) => Step::Split {
            size: fitting_batch(len, facts.topics, opts.max_frame).max(MIN_BATCH),
        },
        (_, None) => Step::Split {
            size: opts.split_size.max(MIN_BATCH),
        },
    }
}

/// The plain body in one request when it fits a frame (its length measured first); None when
/// it does not fit.
fn plain_if_it_fits(opts: &RegisterOptions, facts: &Facts) -> Option<Step> {
    let Some(len) = facts.plain_len else {
        return Some(Step::MeasurePlain);
    };
    (len + HEADER_ROOM <= opts.max_frame).then_some(Step::Whole {
        form: None,
        sent_as: SentAs::Whole,
    })
}

/// Toward a NameServer that deletes by registration: the table whole when it fits a frame,
/// else compressed in the NameServer's form, else nothing.
fn unsplit(opts: &RegisterOptions, facts: &Facts, form: Option<CompressionForm>) -> Step {
    if let Some(step) = plain_if_it_fits(opts, facts) {
        return step;
    }
    match form {
        Some(f) => Step::Whole {
            form: Some(f),
            sent_as: SentAs::AutoCompressed,
        },
        None => Step::Unsplittable,
    }
}

/// The least topics per batch of a split registration.
pub(crate) const MIN_BATCH: usize = 2;

/// The most one batch's body holds, whatever the frame allows: a round holds one batch at a
/// time, so this bounds a split round's memory (150k topics in plain JSON: under 40 MiB RSS;
/// a NameServer takes 4 MiB batches as readily as larger ones).
pub(crate) const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Topics per batch so that each batch's body stays within three quarters of a frame and
/// within [`BATCH_BYTES`], judged from the whole body's size.
pub(crate) fn fitting_batch(body_len: usize, topics: usize, max_frame: usize) -> usize {
    let per_topic = body_len.div_ceil(topics.max(1)).max(1);
    let room = (max_frame.saturating_sub(HEADER_ROOM) / 4 * 3).min(BATCH_BYTES);
    (room / per_topic).max(1)
}

#[cfg(test)]
mod tests;
