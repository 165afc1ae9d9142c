//! `surreal`: SurrealDB's server binary, as the `surreal` command of the SurrealDB release (`surreal start ...`).

use std::process::ExitCode;

fn main() -> ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
