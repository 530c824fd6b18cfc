//! The topic table the daemon registers: the broker's topics.json, inline topics, and for a
//! slave the master's topics.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use crate::broker::body::{read_topics_json, DataVersion, TopicConfig, TopicConfigWrapper};
use crate::config::{InlineTopic, TopicSource, TopicsConfig};

/// Why the topics file could not be used; the last good topics stay in force.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a topics.json.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// The current table and where its parts came from.
#[derive(Debug, Clone)]
pub struct TopicState {
    /// Shared with registration rounds, which may outlive a change.
    table: Arc<TopicConfigWrapper>,
    from_file: BTreeMap<String, TopicConfig>,
    /// Metadata of the file last read, for the cheap change check.
    file_sig: Option<(PathBuf, SystemTime, u64)>,
    /// CRC of the bytes last parsed: an unchanged file is not parsed again.
    file_crc: Option<(PathBuf, u32)>,
    from_master: BTreeMap<String, TopicConfig>,
    /// The broker's own answer (`source = "broker"`) and the data version it carried.
    from_broker: BTreeMap<String, TopicConfig>,
    broker_version: Option<DataVersion>,
    /// A source whose map was moved into the table rather than copied (its field is empty).
    lent: Option<Lent>,
    /// The inline topics of the last merge, and whether a source changed since.
    inline_seen: Option<Vec<InlineTopic>>,
    dirty: bool,
}

/// Where a part of the table came from; a later one wins on a name clash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Master,
    File,
    Broker,
}

/// A source map that lives in the table, and the inline names the merge added to it: with one
/// big source (the usual case) the table is its only copy.
#[derive(Debug, Clone)]
struct Lent {
    source: Source,
    added: BTreeSet<String>,
}

impl Default for TopicState {
    fn default() -> Self {
        TopicState {
            table: Arc::new(TopicConfigWrapper {
                data_version: DataVersion::now(),
                ..Default::default()
            }),
            from_file: BTreeMap::new(),
            file_sig: None,
            file_crc: None,
            from_master: BTreeMap::new(),
            from_broker: BTreeMap::new(),
            broker_version: None,
            lent: None,
            inline_seen: None,
            dirty: true,
        }
    }
}

fn signature(path: &Path) -> Option<(PathBuf, SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((path.to_path_buf(), m.modified().ok()?, m.len()))
}

impl TopicState {
    /// The table to register.
    pub fn table(&self) -> Arc<TopicConfigWrapper> {
        self.table.clone()
    }

    /// True when the file changed since it was last read (cheap: metadata only).
    pub fn file_changed(&self, cfg: &TopicsConfig) -> bool {
        match file_of(cfg) {
            Some(p) => signature(p) != self.file_sig,
            None => self.file_sig.is_some(),
        }
    }

    /// Re-reads the file (when `force` or it changed) and rebuilds the table; true if it changed.
    /// A bad file keeps the last good file topics and is returned as the error.
    pub fn refresh(&mut self, cfg: &TopicsConfig, force: bool) -> Result<bool, TopicsError> {
        let mut problem = None;
        if cfg.source != TopicSource::Broker {
            self.replace(Source::Broker, BTreeMap::new());
            self.broker_version = None;
        }
        match file_of(cfg) {
            Some(path) if force || self.file_changed(cfg) => {
                // Remembered even when unusable, so one bad edit is reported once.
                self.file_sig = signature(path);
                problem = self.read_file(path).err();
            }
            Some(_) => {}
            None => {
                self.replace(Source::File, BTreeMap::new());
                self.file_sig = None;
                self.file_crc = None;
            }
        }
        let changed = self.rebuild(cfg);
        match problem {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    /// Sets the master's topics (slave only); true if the table changed.
    pub fn set_master_topics(
        &mut self,
        cfg: &TopicsConfig,
        topics: BTreeMap<String, TopicConfig>,
    ) -> bool {
        self.replace(Source::Master, topics);
        self.rebuild(cfg)
    }

    /// Sets the broker's own topics (`source = "broker"`); true if the table changed.
    /// An answer with the data version already seen is taken as unchanged without a merge.
    pub fn set_broker_topics(&mut self, cfg: &TopicsConfig, w: TopicConfigWrapper) -> bool {
        let version = w.data_version;
        if self.broker_version == Some(version) {
            return false;
        }
        self.broker_version = Some(version);
        self.replace(Source::Broker, w.topic_config_table);
        self.rebuild(cfg);
        // The broker's own version is registered, so that a NameServer's stateVersion (epoch)
        // arbitration sees what the broker itself would send. Same topics under a new version
        // (a new epoch after an election) copy the table once.
        if self.table.data_version != version {
            Arc::make_mut(&mut self.table).data_version = version;
        }
        true
    }

    /// Advances the table's data version without a topic change: something else registered
    /// changed (identity, permission), and NameServers update queue data only on a new version.
    pub fn advance_version(&mut self) {
        let mut table = (*self.table).clone();
        table.data_version = table.data_version.next();
        self.table = Arc::new(table);
    }

    /// The data version of the broker's own topics as last read (`source = "broker"`).
    pub fn broker_version(&self) -> Option<DataVersion> {
        self.broker_version
    }

    /// True once the broker's topics were read at least once.
    pub fn has_broker_topics(&self) -> bool {
        self.broker_version.is_some()
    }

    fn source(&mut self, s: Source) -> &mut BTreeMap<String, TopicConfig> {
        match s {
            Source::Master => &mut self.from_master,
            Source::File => &mut self.from_file,
            Source::Broker => &mut self.from_broker,
        }
    }

    /// Sets one source's topics; a lent map being replaced needs no copy back.
    fn replace(&mut self, s: Source, topics: BTreeMap<String, TopicConfig>) {
        let lent_here = self.lent.as_ref().is_some_and(|l| l.source == s);
        if lent_here {
            self.lent = None;
        }
        let old = self.source(s);
        if lent_here || !old.is_empty() || !topics.is_empty() {
            *old = topics;
            self.dirty = true;
        }
    }

    /// Gives a lent source its map back: the table without what the merge added.
    fn reclaim(&mut self) {
        if let Some(lent) = self.lent.take() {
            let mut map = self.table.topic_config_table.clone();
            map.retain(|name, _| !lent.added.contains(name));
            *self.source(lent.source) = map;
        }
    }

    /// Inline topics first, so that the broker's (or the file's) entry wins on a name clash:
    /// what the broker serves is the truth. Nothing is merged when nothing changed.
    fn rebuild(&mut self, cfg: &TopicsConfig) -> bool {
        if !self.dirty && self.inline_seen.as_ref() == Some(&cfg.inline) {
            return false;
        }
        self.reclaim();
        let order = [Source::Master, Source::File, Source::Broker];
        let filled: Vec<Source> = order
            .into_iter()
            .filter(|s| !self.source(*s).is_empty())
            .collect();
        let merged = if let [only] = filled[..] {
            let mut merged = std::mem::take(self.source(only));
            let mut added = BTreeSet::new();
            for t in &cfg.inline {
                if added.contains(&t.name) || !merged.contains_key(&t.name) {
                    merged.insert(t.name.clone(), inline_topic(t));
                    added.insert(t.name.clone());
                }
            }
            self.lent = Some(Lent {
                source: only,
                added,
            });
            merged
        } else {
            let mut merged: BTreeMap<String, TopicConfig> = cfg
                .inline
                .iter()
                .map(|t| (t.name.clone(), inline_topic(t)))
                .collect();
            for s in order {
                merged.extend(self.source(s).iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            merged
        };
        self.inline_seen = Some(cfg.inline.clone());
        self.dirty = false;
        let mut merged = merged;
        let lone_added = cfg.added.as_ref().zip(cfg.inline.first()).is_some_and(|(a, own)| {
            merged.len() == 1 && merged.get(a) == Some(&inline_topic(own))
        });
        if lone_added {
            // Only the topic named after the broker: an empty table registers, one topic alone
            // a Java 5.x NameServer refuses (and the Rust one drops for an unlisted id).
            merged.clear();
        }
        if merged == self.table.topic_config_table {
            return false;
        }
        let data_version = self.table.data_version.next();
        self.table = Arc::new(TopicConfigWrapper {
            topic_config_table: merged,
            data_version,
            ..Default::default()
        });
        true
    }

    /// Reads the file; parses it only when its bytes changed since the last good parse.
    fn read_file(&mut self, path: &Path) -> Result<(), TopicsError> {
        let read_err = |source| TopicsError::Read {
            path: path.into(),
            source,
        };
        // Checked in chunks: an unchanged 18 MB file costs no 18 MB buffer every cycle.
        let crc = (path.to_path_buf(), file_crc(path).map_err(read_err)?);
        if self.file_crc.as_ref() == Some(&crc) {
            return Ok(());
        }
        // The CRC of the pass that parsed (a file with bare keys is read twice).
        let hasher = Rc::new(RefCell::new(crc32fast::Hasher::new()));
        let w = read_topics_json(|| {
            *hasher.borrow_mut() = crc32fast::Hasher::new();
            Ok(CrcReader(std::fs::File::open(path)?, hasher.clone()))
        })
        .map_err(|source| {
            if source.is_io() {
                TopicsError::Read {
                    path: path.into(),
                    source: std::io::Error::other(source),
                }
            } else {
                TopicsError::Parse {
                    path: path.into(),
                    source,
                }
            }
        })?;
        self.replace(Source::File, w.topic_config_table);
        // The CRC of what was parsed, in case the file changed between the two reads.
        self.file_crc = Some((crc.0, hasher.borrow().clone().finalize()));
        Ok(())
    }
}

fn inline_topic(t: &InlineTopic) -> TopicConfig {
    let mut c = TopicConfig::new(t.name.clone(), t.read_queues);
    c.write_queue_nums = t.write_queues;
    c.perm = t.perm;
    c.order = t.order;
    c
}

/// The file to read: only with `source = "file"`.
fn file_of(cfg: &TopicsConfig) -> Option<&PathBuf> {
    match cfg.source {
        TopicSource::File => cfg.file.as_ref(),
        TopicSource::Broker => None,
    }
}

/// A reader that keeps the CRC32 of what went through it.
struct CrcReader<R>(R, Rc<RefCell<crc32fast::Hasher>>);

impl<R: std::io::Read> std::io::Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// CRC32 of a file's contents, read 64 KiB at a time.
fn file_crc(path: &Path) -> std::io::Result<u32> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(hasher.finalize()),
            n => hasher.update(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests;
