//! Subcommands of the `seam` binary that are not `serve`.

pub mod inspect;
pub mod push;
pub mod replay;
