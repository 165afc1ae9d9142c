//! The storage engine under the on-disk graph (SurrealKV), driven directly: range scans that run while
//! memtables are flushed and level-0 tables compacted must not deadlock.
//!
//! SurrealKV 0.21.4 takes the immutable-memtable lock before the level manifest when a scan collects its
//! state, while a compaction's manifest update takes them the other way round. nanodex builds a patched
//! copy (`vendor/surrealkv`, see its `PATCHES.md`); this test fails (a scan or write stops making progress)
//! against the unpatched crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use surrealkv::{LSMIterator, TreeBuilder};

/// How long the workload runs.
const RUN: Duration = Duration::from_secs(6);
/// A thread that has not finished an operation for this long is stuck.
const STUCK: Duration = Duration::from_secs(30);

#[test]
fn range_scans_during_flushes_and_compactions_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    // The engine's flush and compaction tasks run on this runtime.
    let rt = crate::rt();
    let tree = rt.block_on(async {
        TreeBuilder::new()
            .with_path(dir.path().join("kv"))
            // A tiny memtable: a flush every few transactions, a level-0 compaction every fourth flush.
            .with_max_memtable_size(64 * 1024)
            .build()
            .expect("tree opens")
    });
    let tree = Arc::new(tree);
    let stop = Arc::new(AtomicBool::new(false));
    // Operations finished by each thread: the writer first, then the readers.
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());

    let mut threads = vec![{
        let (tree, stop, done, handle) = (
            tree.clone(),
            stop.clone(),
            done.clone(),
            rt.handle().clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut txn = tree.begin().expect("write transaction");
                for _ in 0..200 {
                    // Keys cycle so that compactions merge overlapping tables.
                    let key = format!("key{:08}", n % 20_000);
                    txn.set(key.as_bytes(), &[7u8; 100]).expect("set");
                    n += 1;
                }
                handle.block_on(txn.commit()).expect("commit");
                done[0].fetch_add(1, Ordering::Relaxed);
            }
        })
    }];
    for i in 1..done.len() {
        let (tree, stop, done) = (tree.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let txn = tree.begin().expect("read transaction");
                // Every new range iterator collects the memtables and the level manifest.
                let mut it = txn
                    .range(b"key".as_slice(), b"kez".as_slice())
                    .expect("range");
                let mut ok = it.seek_first().expect("seek");
                for _ in 0..10 {
                    if !ok {
                        break;
                    }
                    ok = it.next().expect("next");
                }
                done[i].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Every thread must keep finishing operations while the workload runs, and stop when told.
    let start = Instant::now();
    let mut last: Vec<(u64, Instant)> = done.iter().map(|_| (0, start)).collect();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        for (i, (count, since)) in last.iter_mut().enumerate() {
            let c = done[i].load(Ordering::Relaxed);
            if c != *count || threads[i].is_finished() {
                (*count, *since) = (c, now);
            }
            if now - *since >= STUCK {
                // The runtime's worker is stuck too: dropping the runtime would wait for it forever.
                std::mem::forget(rt);
                panic!(
                    "thread {i} ({}) made no progress for {STUCK:?} after {c} operations: the engine deadlocked",
                    if i == 0 { "writer" } else { "range scans" }
                );
            }
        }
        if now - start >= RUN {
            stop.store(true, Ordering::Relaxed);
        }
        if threads.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    for t in threads {
        t.join().expect("thread finished cleanly");
    }
    let counts: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    assert!(
        counts.iter().all(|&c| c > 0),
        "every thread ran: {counts:?}"
    );
    rt.block_on(tree.close()).expect("close");
}
