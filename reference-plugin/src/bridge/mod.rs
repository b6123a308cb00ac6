//! The `bridge` interface plugin (digest §8). Work in progress.
