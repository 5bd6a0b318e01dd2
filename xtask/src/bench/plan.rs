//! What to measure: the plan's sizes from the flags, the three targets, the two modes and the
//! request each sends.

use serde::{Serialize, Serializer};

use super::Args;

/// Long enough for a valid bench token (the proxy refuses tokens under 16 characters).
pub const TOKEN: &str = "bench-token-0123456789abcdef";
const REQUEST: &str = include_str!("../../bench/request.json");
/// The same conversation as [`REQUEST`] in Anthropic's Messages shape, for the translated points.
const MESSAGES: &str = include_str!("../../bench/messages.json");

/// How much to measure.
#[derive(Serialize)]
pub struct Plan {
    pub quick: bool,
    pub seconds: u32,
    pub rounds: u32,
    pub concurrency: Vec<u32>,
    pub warmup: bool,
    pub ttfb_samples: usize,
    pub streams: usize,
    pub leak_requests: u64,
    pub cold_starts: usize,
    pub image: bool,
}

impl Plan {
    pub fn new(args: &Args) -> Self {
        let q = args.quick;
        Self {
            quick: q,
            seconds: args.seconds.unwrap_or(if q { 1 } else { 5 }).max(1),
            rounds: args.rounds.unwrap_or(if q { 1 } else { 3 }).max(1),
            concurrency: if q { vec![1, 64] } else { vec![1, 16, 64] },
            warmup: !q,
            ttfb_samples: if q { 20 } else { 300 },
            streams: if q { 50 } else { 1000 },
            leak_requests: if q { 2_000 } else { 100_000 },
            cold_starts: if q { 3 } else { 9 },
            image: !q,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Direct,
    Nginx,
    Proxy,
}

impl Target {
    pub const ALL: [Self; 3] = [Self::Direct, Self::Nginx, Self::Proxy];

    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Nginx => "nginx",
            Self::Proxy => "ai-proxy",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Json,
    Stream,
}

/// Serialized by [`Target::name`], the one spelling of each target.
impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Mode {
    pub const ALL: [Self; 2] = [Self::Json, Self::Stream];

    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Stream => "stream",
        }
    }

    pub fn model(self) -> &'static str {
        match self {
            Self::Json => "bench-json",
            Self::Stream => "bench-stream",
        }
    }

    /// The mock's path for this mode (the proxy always takes `/v1/chat/completions`).
    pub fn mock_path(self) -> &'static str {
        match self {
            Self::Json => "/v1/chat/completions",
            Self::Stream => "/stream/v1/chat/completions",
        }
    }
}

/// Serialized by [`Mode::name`].
impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The request body for `model`, streaming or not; the same bytes go to every target.
pub fn request_body(model: &str, stream: bool) -> String {
    REQUEST
        .trim_end()
        .replace("@MODEL@", model)
        .replace("@STREAM@", if stream { "true" } else { "false" })
}

/// [`request_body`] in Anthropic's Messages shape (`POST /v1/messages`), which ai-proxy
/// translates for the `openai`-kind mock.
pub fn messages_body(model: &str, stream: bool) -> String {
    MESSAGES
        .trim_end()
        .replace("@MODEL@", model)
        .replace("@STREAM@", if stream { "true" } else { "false" })
}
