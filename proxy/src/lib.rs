//! ai-proxy: an OpenAI- and Anthropic-compatible AI gateway.
