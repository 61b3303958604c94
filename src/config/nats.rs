//! Scale-out settings (`--publish`, `--source`, `--nats-*`): an origin publishes its frames
//! to a NATS JetStream stream, an edge serves that stream instead of a ring
//! (docs/scale-out.md).

use std::path::PathBuf;
use std::time::Duration;

use crate::bus::client::has_credentials;
use crate::bus::creds::{self, Credentials};
use crate::bus::publisher::PublishSettings;
use crate::bus::stream::StreamSettings;

/// `Config::nats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Origin: NATS servers to publish every frame to (`nats://host:port`, one or more seeds
    /// of one cluster). Empty: no publishing.
    pub publish: Vec<String>,
    /// Edge: NATS servers to consume the stream from, instead of reading a ring (one or more
    /// seeds of one cluster). Empty: a normal gateway on a ring.
    pub source: Vec<String>,
    /// `--nats-creds`: a file with the credentials for `publish` or `source` (user and
    /// password, or a token; `crate::bus::creds`), read at startup. `None`: none, or the
    /// ones in the URLs.
    pub creds_file: Option<PathBuf>,
    /// Stream name (and first subject token). Default `RINGGATE`.
    pub stream: String,
    /// Oldest frame the stream keeps. Default 24 h: an edge serves resume and `from_block`
    /// from what it read of the stream, and a restarted edge reads it again from the start.
    pub max_age: Duration,
    /// Most bytes the stream keeps, oldest dropped first. Default 8 GiB (JetStream refuses
    /// a stream larger than its store may grow, by default 75 % of the free disk).
    pub max_bytes: u64,
    /// Copies a NATS cluster keeps (1 for a single server; 3 for a three-node cluster).
    pub replicas: u32,
    /// Frames the tailer may queue for the publisher: at 20,000 frames/s, 2^18 is 13 s of a
    /// bus outage held before frames are lost (announced as `bus_lost`).
    pub queue_frames: usize,
    /// Frames in one publish window (published together, the next window once JetStream
    /// acked this one), at most.
    pub window_frames: usize,
}

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
            publish: Vec::new(),
            source: Vec::new(),
            creds_file: None,
            stream: "RINGGATE".into(),
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 8 << 30,
            replicas: 1,
            queue_frames: 1 << 18,
            window_frames: 1024,
        }
    }
}

impl NatsConfig {
    /// Whether this gateway is an edge (reads the stream, not a ring).
    pub fn is_edge(&self) -> bool {
        !self.source.is_empty()
    }

    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            name: self.stream.clone(),
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            replicas: self.replicas,
            duplicate_window: Duration::from_secs(120),
        }
    }

    /// The credentials of `--nats-creds`, read and checked (`Ok(None)` without the flag).
    /// Refused: a bad file (see `crate::bus::creds`), or credentials in a URL too.
    pub fn credentials(&self) -> Result<Option<Credentials>, String> {
        let Some(path) = &self.creds_file else {
            return Ok(None);
        };
        if self.publish.is_empty() && self.source.is_empty() {
            return Err("--nats-creds without --publish or --source".into());
        }
        if self
            .publish
            .iter()
            .chain(&self.source)
            .any(|u| has_credentials(u))
        {
            return Err(
                "credentials both in a NATS URL and in --nats-creds: keep them in the file".into(),
            );
        }
        creds::read(path).map(Some)
    }

    /// The publisher's settings, when this gateway publishes, with `creds` from
    /// [`NatsConfig::credentials`].
    pub fn publish_settings(&self, creds: Option<Credentials>) -> Option<PublishSettings> {
        (!self.publish.is_empty()).then(|| PublishSettings {
            urls: self.publish.clone(),
            creds,
            stream: self.stream_settings(),
            queue_frames: self.queue_frames,
            window_frames: self.window_frames,
        })
    }
}
