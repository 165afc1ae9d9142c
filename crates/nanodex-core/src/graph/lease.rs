//! A writer's lease on a SurrealDB server's namespace.
//!
//! The workspace lock (`brain/graph.lock`) keeps two writers of one workspace apart, but several workspaces, on
//! one machine or on several, may name the same server and namespace (`graph.store: ws://...`). Two writers there
//! would undo each other: a full build removes every graph database but the current one, which is the other
//! writer's half-written database, and the last switch of `state:current` wins. So a writer of a server's
//! namespace first takes the record `writer:lease` of its `meta` database:
//! - it creates the record, naming itself (a random owner id, host, pid, workspace), in a transaction that fails
//!   when another writer's record is there: that writer gets [`GraphError::LeaseHeld`], naming the holder;
//! - it renews the record every [`TTL`] / 4 over a connection of its own (the store's connection may be busy
//!   with a long statement, and its session sits in the graph's database);
//! - a lease not renewed for [`TTL`] is stale, as is one whose holder ran on this host (same host name and, on
//!   Linux, same kernel boot id) and has exited (a killed run): the next writer deletes it and creates its own
//!   in one transaction, so of two writers taking over the same stale lease, one gets it;
//! - the switch of a full build to its new graph is one transaction that first checks that the lease is still
//!   this writer's; an incremental write checks it just before its transaction ([`Lease::confirm`]);
//! - [`Lease::release`] deletes the record (if it is still this writer's) when the store closes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use surrealdb::types::Value;

use super::conn::Conn;
use crate::error::GraphError;

/// How long a lease lasts without renewal.
pub(super) const TTL: Duration = Duration::from_secs(60);

/// Who holds (or asks for) a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Claimant {
    /// Random, new for each store opened for writing.
    pub owner: String,
    pub host: String,
    /// The kernel's boot id (Linux; empty elsewhere): with the host name, tells that a pid is of this machine's
    /// current boot, so that a holder's exit can be checked here.
    pub boot: String,
    pub pid: u32,
    /// The writer's workspace (absolute).
    pub workspace: String,
}

impl Claimant {
    /// This process, writing for `workspace`.
    pub fn this_process(workspace: &Path) -> Claimant {
        Claimant {
            owner: format!("{:016x}", rand::random::<u64>()),
            host: host_name(),
            boot: boot_id(),
            pid: std::process::id(),
            workspace: std::path::absolute(workspace)
                .unwrap_or_else(|_| workspace.to_path_buf())
                .display()
                .to_string(),
        }
    }
}

/// The lease record as read, with its age by the server's clock.
#[derive(Clone, Debug)]
struct Held {
    claimant: Claimant,
    age_secs: i64,
}

/// A lease held by this writer. Renewed in the background until [`Lease::release`] or drop.
pub(super) struct Lease {
    claimant: Claimant,
    /// The lease's own connection, in the namespace's `meta` database.
    conn: Conn,
    /// Set by the renewal task when the record is gone or another writer's, or could not be renewed for [`TTL`].
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
    /// Server and namespace, for messages.
    place: String,
}

const READ: &str = "SELECT owner, host, boot, pid, workspace, \
                    time::unix(time::now()) - time::unix(renewed ?? d'1970-01-01T00:00:00Z') AS age \
                    FROM ONLY writer:lease";
const TAKE: &str = "BEGIN TRANSACTION;\n\
                    DELETE writer:lease WHERE owner = $previous;\n\
                    CREATE writer:lease CONTENT { owner: $owner, host: $host, boot: $boot, pid: $pid, workspace: $workspace, \
                    acquired: time::now(), renewed: time::now() } RETURN NONE;\n\
                    COMMIT TRANSACTION;";
const RENEW: &str =
    "UPDATE writer:lease SET renewed = time::now() WHERE owner = $owner RETURN VALUE owner";
const RELEASE: &str = "DELETE writer:lease WHERE owner = $owner";

/// `statement` (in `meta`) in a transaction that makes it only while `$owner` holds the lease.
pub(super) fn guarded(statement: &str) -> String {
    format!(
        "BEGIN TRANSACTION;\n\
         IF (SELECT VALUE owner FROM ONLY writer:lease) != $owner {{ THROW 'the writer lease is not ours' }};\n\
         {statement};\n\
         COMMIT TRANSACTION;"
    )
}

async fn read(conn: &Conn) -> Result<Option<Held>, surrealdb::Error> {
    let mut res = conn.query(READ).await?;
    let row: Option<Value> = res.take(0)?;
    let Some(row) = row.map(Value::into_json_value).filter(|r| r.is_object()) else {
        return Ok(None);
    };
    let text = |key: &str| {
        row.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    let int = |key: &str| row.get(key).and_then(|v| v.as_i64()).unwrap_or(0);
    Ok(Some(Held {
        claimant: Claimant {
            owner: text("owner"),
            host: text("host"),
            boot: text("boot"),
            pid: int("pid").try_into().unwrap_or(0),
            workspace: text("workspace"),
        },
        age_secs: int("age"),
    }))
}

/// Whether `held` may be taken over by `me`: it is stale, or its holder ran on this machine since its last boot
/// and has exited.
fn stale(held: &Held, me: &Claimant, ttl: Duration) -> bool {
    let here = held.claimant.host == me.host && held.claimant.boot == me.boot;
    held.age_secs >= ttl.as_secs() as i64 || (here && !process_alive(held.claimant.pid))
}

/// Takes the lease of the namespace `conn` is in (its `meta` database), or says who holds it. `conn` becomes
/// the lease's own connection; `place` names server and namespace in messages.
pub(super) async fn acquire(
    conn: Conn,
    me: Claimant,
    ttl: Duration,
    place: String,
) -> Result<Lease, GraphError> {
    let failed = |context: &str| {
        let context = format!("{context} the writer lease of {place}");
        move |err: surrealdb::Error| GraphError::Db {
            context,
            message: err.to_string(),
        }
    };
    // Two tries: a writer that loses a race for a free or stale lease reads the winner's record and reports it.
    let mut last_err = None;
    for _ in 0..2 {
        let previous = match read(&conn).await.map_err(failed("reading"))? {
            None => None,
            Some(held) if stale(&held, &me, ttl) => {
                tracing::warn!(
                    holder = ?held.claimant, age_secs = held.age_secs,
                    "taking over a stale writer lease of {place}"
                );
                Some(held.claimant.owner)
            }
            Some(held) => return Err(held_error(&place, held)),
        };
        let taken = conn
            .query(TAKE)
            .bind(("previous", previous))
            .bind(("owner", me.owner.clone()))
            .bind(("host", me.host.clone()))
            .bind(("boot", me.boot.clone()))
            .bind(("pid", i64::from(me.pid)))
            .bind(("workspace", me.workspace.clone()))
            .await
            .and_then(|r| r.check());
        match taken {
            Ok(_) => {
                let lost = Arc::new(AtomicBool::new(false));
                let renewal = tokio::spawn(renew_until_lost(
                    conn.clone(),
                    me.owner.clone(),
                    ttl,
                    lost.clone(),
                ));
                return Ok(Lease {
                    claimant: me,
                    conn,
                    lost,
                    renewal,
                    place,
                });
            }
            Err(err) => last_err = Some(err),
        }
    }
    match read(&conn).await.map_err(failed("reading"))? {
        Some(held) => Err(held_error(&place, held)),
        None => Err(failed("taking")(last_err.expect("a failed try"))),
    }
}

fn held_error(place: &str, held: Held) -> GraphError {
    GraphError::LeaseHeld {
        place: place.to_string(),
        host: held.claimant.host,
        pid: held.claimant.pid,
        workspace: held.claimant.workspace,
        age_secs: held.age_secs.max(0) as u64,
        ttl_secs: TTL.as_secs(),
    }
}

/// Renews `owner`'s lease every `ttl` / 4 until it is found lost: the record is gone or another writer's, or no
/// renewal got through for `ttl`.
async fn renew_until_lost(conn: Conn, owner: String, ttl: Duration, lost: Arc<AtomicBool>) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ttl / 4).await;
        match renew(&conn, &owner).await {
            Ok(true) => last_ok = tokio::time::Instant::now(),
            Ok(false) => break,
            Err(err) if last_ok.elapsed() >= ttl => {
                tracing::warn!("could not renew the writer lease for {ttl:?}: {err}");
                break;
            }
            Err(_) => {}
        }
    }
    lost.store(true, Ordering::SeqCst);
}

/// Renews `owner`'s lease; false when the record is gone or another writer's.
async fn renew(conn: &Conn, owner: &str) -> Result<bool, surrealdb::Error> {
    let mut res = conn.query(RENEW).bind(("owner", owner.to_string())).await?;
    let owners: Vec<String> = res.take(0)?;
    Ok(!owners.is_empty())
}

impl Lease {
    /// This writer's owner id.
    pub fn owner(&self) -> &str {
        &self.claimant.owner
    }

    /// Renews the lease now, or fails with [`GraphError::LeaseLost`] when it is no longer this writer's.
    pub async fn confirm(&self) -> Result<(), GraphError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lost_error());
        }
        match renew(&self.conn, &self.claimant.owner).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(self.lost_error())
            }
            Err(err) => Err(GraphError::Db {
                context: format!("renewing the writer lease of {}", self.place),
                message: err.to_string(),
            }),
        }
    }

    fn lost_error(&self) -> GraphError {
        GraphError::LeaseLost {
            place: self.place.clone(),
            ttl_secs: TTL.as_secs(),
        }
    }

    /// Deletes the lease record if it is still this writer's.
    pub async fn release(self) {
        self.renewal.abort();
        let released = self
            .conn
            .query(RELEASE)
            .bind(("owner", self.claimant.owner.clone()))
            .await
            .and_then(|r| r.check());
        if let Err(err) = released {
            tracing::warn!(
                "could not release the writer lease of {}: {err}",
                self.place
            );
        }
        self.conn.clone().close();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// This machine's host name (`?` when unknown).
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is writable for its length; gethostname NUL-terminates what fits.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "?".into())
}

/// The kernel's boot id (Linux), empty elsewhere or when unreadable. Two containers on one machine share it but
/// not, as a rule, their host name.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

/// Whether a process `pid` runs on this host (true when that cannot be told).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::rt;

    async fn meta() -> Conn {
        let conn =
            super::super::conn::open_local("memory", super::super::conn::Durability::EachCommit)
                .await
                .unwrap();
        super::super::prepare(&conn, "nanodex").await.unwrap();
        conn
    }

    fn claimant(owner: &str, host: &str, pid: u32) -> Claimant {
        Claimant {
            owner: owner.into(),
            host: host.into(),
            boot: boot_id(),
            pid,
            workspace: format!("/ws/{owner}"),
        }
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder_named_until_the_first_releases() {
        rt().block_on(async {
            let conn = meta().await;
            let me = Claimant::this_process(Path::new("/tmp/ws-a"));
            let first = acquire(conn.clone(), me.clone(), TTL, "server (namespace n)".into())
                .await
                .unwrap();
            let other = claimant("other", "elsewhere", 4242);
            let err = acquire(
                conn.clone(),
                other.clone(),
                TTL,
                "server (namespace n)".into(),
            )
            .await
            .err()
            .expect("the lease is held");
            let msg = err.to_string();
            assert!(
                msg.contains("server (namespace n)")
                    && msg.contains(&format!("pid {}", me.pid))
                    && msg.contains(&me.host)
                    && msg.contains(&me.workspace),
                "{msg}"
            );
            first.confirm().await.unwrap();
            first.release().await;
            let second = acquire(conn.clone(), other, TTL, "s".into()).await.unwrap();
            second.confirm().await.unwrap();
            let held = read(&conn).await.unwrap().unwrap();
            assert_eq!(held.claimant.owner, "other");
        });
    }

    #[test]
    fn a_stale_lease_or_one_of_an_exited_process_here_is_taken_over_and_its_holder_learns_it_lost_it()
     {
        rt().block_on(async {
            let conn = meta().await;
            let host = host_name();
            // Renewed five minutes ago on another host: stale.
            conn.query(
                "CREATE writer:lease CONTENT { owner: 'old', host: 'elsewhere', pid: 1, workspace: '/w', \
                 renewed: time::now() - 5m }",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
            let stalled = Lease {
                claimant: claimant("old", "elsewhere", 1),
                conn: conn.clone(),
                lost: Arc::new(AtomicBool::new(false)),
                renewal: tokio::spawn(async {}),
                place: "s".into(),
            };
            let me = acquire(conn.clone(), claimant("me", &host, std::process::id()), TTL, "s".into())
                .await
                .unwrap();
            assert!(matches!(stalled.confirm().await, Err(GraphError::LeaseLost { .. })));
            // Its release leaves the new holder's lease alone.
            stalled.release().await;
            me.confirm().await.unwrap();
            drop(me);
            // A record without a renewal time (not one of ours) is stale too, rather than held for ever.
            let conn = meta().await;
            conn.query("CREATE writer:lease CONTENT { owner: 'odd', host: 'elsewhere', pid: 1 }")
                .await
                .unwrap()
                .check()
                .unwrap();
            acquire(conn, claimant("me", &host, std::process::id()), TTL, "s".into())
                .await
                .unwrap();

            // Fresh, but its holder was a process of this host that no longer runs.
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let gone = child.id();
            child.wait().unwrap();
            // (The same host name in another boot, or another machine named alike: that pid says nothing here.)
            let conn = meta().await;
            let elsewhere = Claimant {
                boot: "another-boot".into(),
                ..claimant("twin", &host, gone)
            };
            drop(acquire(conn.clone(), elsewhere, TTL, "s".into()).await.unwrap());
            let err = acquire(conn, claimant("me", &host, std::process::id()), TTL, "s".into()).await;
            assert!(matches!(err, Err(GraphError::LeaseHeld { .. })));
            let conn = meta().await;
            let dead = acquire(conn.clone(), claimant("dead", &host, gone), TTL, "s".into())
                .await
                .unwrap();
            drop(dead);
            acquire(conn.clone(), claimant("next", &host, std::process::id()), TTL, "s".into())
                .await
                .unwrap();
            // A fresh lease of a live process on another host is not.
            let err = acquire(conn, claimant("third", "elsewhere", 7), TTL, "s".into()).await;
            assert!(matches!(err, Err(GraphError::LeaseHeld { .. })));
        });
    }

    #[test]
    fn the_guarded_switch_refuses_a_writer_without_the_lease() {
        rt().block_on(async {
            let conn = meta().await;
            let lease = acquire(
                conn.clone(),
                claimant("me", "h", std::process::id()),
                TTL,
                "s".into(),
            )
            .await
            .unwrap();
            let switch = |owner: &str| {
                conn.query(guarded(super::super::SWITCH))
                    .bind(("owner", owner.to_string()))
                    .bind(("db", "g7".to_string()))
                    .bind(("generation", 7i64))
            };
            let refused = switch("intruder").await.and_then(|r| r.check());
            assert!(refused.is_err(), "{refused:?}");
            let mut res = conn
                .query("SELECT VALUE db FROM ONLY state:current")
                .await
                .unwrap();
            assert_eq!(res.take::<Option<String>>(0).unwrap(), None);
            switch(lease.owner()).await.unwrap().check().unwrap();
            let mut res = conn
                .query("SELECT VALUE db FROM ONLY state:current")
                .await
                .unwrap();
            assert_eq!(
                res.take::<Option<String>>(0).unwrap().as_deref(),
                Some("g7")
            );
        });
    }
}
