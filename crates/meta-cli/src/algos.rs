//! Which algorithms the CLI can train, and how a `RunConfig` builds each of them.

/// Every `--algo` value.
pub const ALGOS: &[&str] = &[
    "maml",
    "fomaml",
    "anil",
    "boil",
    "reptile",
    "metasgd",
    "protonet",
    "matchingnet",
    "metanet",
    "metanet-eb",
];
