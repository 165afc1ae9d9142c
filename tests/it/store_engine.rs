//! The storage engine under the on-disk graph (SurrealKV), driven directly. nanodex builds a patched copy
//! (`vendor/surrealkv`, see its `PATCHES.md`). The tests of patches 1-5 and 9 fail against the crate without their
//! patch; patches 6 and 7 only remove work (copies; an fsync and a hash that nothing observes), so their tests
//! check that what they rewrote (filters built from key hashes, values read in place while flushing, log
//! rotations without an fsync, the commit oracle's map) gives what the release gave. Patch 8 adds a bulk load
//! (`Tree::ingest`), which its test drives.
//! - Range scans that run while memtables are flushed and level-0 tables compacted must not deadlock.
//!   SurrealKV 0.21.4 takes the immutable-memtable lock before the level manifest when a scan collects its
//!   state, while a compaction's manifest update takes them the other way round (a scan or write then stops
//!   making progress).
//! - A memtable rotated while the flush task ends its round must be flushed: SurrealKV 0.21.4 skipped the wake-up
//!   while the task still counted as running, and a writer stalled behind two unflushed memtables for ever.
//! - A compaction must not fill the block cache with the blocks of the tables it merges (and then deletes):
//!   the compaction that opening a store starts held up to the cache's capacity (64 MiB) beside the next
//!   write, the peak of a JDK rebuild.

use std::path::Path;
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
    // The engine's flush and compaction tasks run on `rt`.
    let (_dir, kv, rt) = new_store();
    // A tiny memtable: a flush every few transactions, a level-0 compaction every fourth flush.
    let tree = Arc::new(build_tree(&rt, store_at(&kv, 64 * 1024)));
    let stop = Arc::new(AtomicBool::new(false));
    // Operations finished by each thread: the writer first, then the readers.
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());

    let mut threads = vec![spawn_writer(&tree, &stop, &done, &rt, 200)];
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
    let rt = watch(threads, &done, &stop, rt, RUN);
    rt.block_on(tree.close()).expect("close");
}

/// The writer thread of the scan and flush-round tests: transactions of `keys` sets each until `stop`, each counted in
/// `done[0]` once committed.
fn spawn_writer(
    tree: &Arc<surrealkv::Tree>,
    stop: &Arc<AtomicBool>,
    done: &Arc<Vec<AtomicU64>>,
    rt: &tokio::runtime::Runtime,
    keys: usize,
) -> std::thread::JoinHandle<()> {
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
            for _ in 0..keys {
                // Keys cycle so that compactions merge overlapping tables.
                let key = format!("key{:08}", n % 20_000);
                txn.set(key.as_bytes(), &[7u8; 100]).expect("set");
                n += 1;
            }
            handle.block_on(txn.commit()).expect("commit");
            done[0].fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// Lets `threads` (thread 0 the writer, the others range scans) run for `run`, then stops them and waits for them;
/// `done[i]` counts the operations thread `i` finished. Fails when a thread finishes none for [`STUCK`]. Gives
/// `rt` back for the close.
fn watch(
    threads: Vec<std::thread::JoinHandle<()>>,
    done: &[AtomicU64],
    stop: &AtomicBool,
    rt: tokio::runtime::Runtime,
    run: Duration,
) -> tokio::runtime::Runtime {
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
                // The stuck thread may hold the runtime up: dropping it could wait for ever.
                std::mem::forget(rt);
                panic!(
                    "thread {i} ({}) made no progress for {STUCK:?} after {c} operations: the engine deadlocked",
                    if i == 0 { "writer" } else { "range scans" }
                );
            }
        }
        if now - start >= run {
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
    rt
}

/// The engine's own debug message at the end of each round of memtable flushes, after its last check for more
/// immutable memtables and before it marks itself idle.
const FLUSH_ROUND_DONE: &str = "Memtable flush task completed";
/// How long [`SlowFlushRounds`] holds the flush task at that message.
const FLUSH_ROUND_PAUSE: Duration = Duration::from_millis(100);
/// Flush rounds that [`SlowFlushRounds`] held.
static FLUSH_ROUNDS_HELD: AtomicU64 = AtomicU64::new(0);

/// A logger that holds the flush task at [`FLUSH_ROUND_DONE`]: what a preempted worker thread does on a loaded
/// machine (where CI met the bug), made certain.
struct SlowFlushRounds;

impl log::Log for SlowFlushRounds {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        if record.args().to_string().starts_with(FLUSH_ROUND_DONE) {
            FLUSH_ROUNDS_HELD.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(FLUSH_ROUND_PAUSE);
        }
    }

    fn flush(&self) {}
}

#[test]
fn memtables_rotated_while_a_flush_round_ends_are_flushed() {
    crate::in_child_process(
        "store_engine::memtables_rotated_while_a_flush_round_ends_are_flushed",
        rotated_memtables_child,
    );
}

/// A writer fills a memtable every transaction or two, so it rotates two memtables (the stall threshold) while
/// the flush task ends its round: the release skipped their wake-up because the task still counted as running,
/// and the writer then stalled for ever (patch 9).
fn rotated_memtables_child() {
    log::set_logger(&SlowFlushRounds).expect("the child process's only logger");
    log::set_max_level(log::LevelFilter::Debug);
    let (_dir, kv, rt) = new_store();
    let tree = Arc::new(build_tree(&rt, store_at(&kv, 16 * 1024)));
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<Vec<AtomicU64>> = Arc::new(vec![AtomicU64::new(0)]);
    let writer = spawn_writer(&tree, &stop, &done, &rt, 20);
    let rt = watch(vec![writer], &done, &stop, rt, Duration::from_secs(2));
    rt.block_on(tree.close()).expect("close");
    // The pause sat where the race was.
    assert!(
        FLUSH_ROUNDS_HELD.load(Ordering::Relaxed) >= 3,
        "the flush task logged {FLUSH_ROUND_DONE:?} {} times: the test no longer holds it where the race was",
        FLUSH_ROUNDS_HELD.load(Ordering::Relaxed)
    );
}

/// Memtable of the compaction test: each of its four sessions writes less than this, so each leaves exactly one
/// level-0 table when it closes.
const MEMTABLE: usize = 16 << 20;
/// Block cache of the compaction test: large enough to hold every block of the merged tables.
const CACHE: u64 = 512 << 20;

#[test]
fn compaction_does_not_fill_the_block_cache() {
    crate::in_child_process(
        "store_engine::compaction_does_not_fill_the_block_cache",
        compaction_child,
    );
}

fn sst_files(kv: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(kv.join("sstables"))
        .expect("sstables folder")
        .map(|e| e.expect("entry"))
        .map(|e| {
            let size = e.metadata().expect("metadata").len();
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    files
}

fn compaction_child() {
    use std::sync::atomic::Ordering::Relaxed;
    let (_dir, kv, rt) = new_store();
    let open = || {
        build_tree(
            &rt,
            store_at(&kv, MEMTABLE)
                .with_block_cache_capacity(CACHE)
                // This test measures a compaction that an open store runs in the background.
                .with_compact_on_close(false),
        )
    };
    // Four sessions of overlapping keys, each closed with its memtable flushed: four level-0 tables, the
    // number at which SurrealKV compacts level 0 (it checks when a store opens).
    for session in 0..4u32 {
        let tree = open();
        for batch in 0..10u32 {
            let mut txn = tree.begin().expect("write transaction");
            for i in 0..1_000u32 {
                let key = format!("key{:06}-{session}", batch * 1_000 + i);
                txn.set(key.as_bytes(), &[session as u8; 800]).expect("set");
            }
            rt.block_on(txn.commit()).expect("commit");
        }
        rt.block_on(tree.close()).expect("close");
    }
    let merged = sst_files(&kv);
    assert_eq!(merged.len(), 4, "one level-0 table per session: {merged:?}");
    let merged_bytes: u64 = merged.iter().map(|(_, size)| size).sum();

    // The fifth open compacts them in the background; wait until the merged tables are gone.
    let before_open = crate::ALLOCATED.load(Relaxed);
    let tree = open();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sst_files(&kv).iter().any(|f| merged.contains(f)) {
        assert!(
            Instant::now() < deadline,
            "level 0 was not compacted within 60 s: {:?}",
            sst_files(&kv)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What the open, compacted store holds: its memtable, the new table's index and filter, and whatever the
    // compaction left in the block cache.
    let held = crate::ALLOCATED.load(Relaxed) - before_open;
    rt.block_on(tree.close()).expect("close");
    drop(tree);
    let extra = held - MEMTABLE as isize;
    println!(
        "merged {merged_bytes} bytes; the open store holds {held} bytes, {extra} beyond its memtable"
    );
    assert!(
        extra < (merged_bytes / 8) as isize,
        "after compacting {merged_bytes} bytes of tables, the store holds {extra} bytes beyond its memtable: \
         the compaction filled the block cache with blocks of tables it deleted"
    );
    // The data is all there.
    let tree = open();
    let txn = tree.begin().expect("read transaction");
    let mut it = txn
        .range(b"key".as_slice(), b"kez".as_slice())
        .expect("range");
    let mut n = 0;
    let mut ok = it.seek_first().expect("seek");
    while ok {
        n += 1;
        ok = it.next().expect("next");
    }
    drop(it);
    drop(txn);
    assert_eq!(n, 40_000, "every key survives the compaction");
    rt.block_on(tree.close()).expect("close");
}

/// Memtable of the close-compaction tests: every session writes less than this.
const SMALL_MEMTABLE: usize = 4 << 20;

/// The engine's default fewest input bytes of one subcompaction.
const SUBCOMPACTION: u64 = 32 << 20;

/// A new store's folder (kept while the guard lives), the store's path in it, and the runtime its flush and
/// compaction tasks run on.
fn new_store() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    tokio::runtime::Runtime,
) {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv");
    (dir, kv, crate::rt())
}

/// The store at `kv` with engine defaults but a memtable of `memtable` bytes; each test adds its options.
fn store_at(kv: &Path, memtable: usize) -> TreeBuilder {
    TreeBuilder::new()
        .with_path(kv.to_path_buf())
        .with_max_memtable_size(memtable)
}

/// Opens the tree that `builder` describes.
fn build_tree(rt: &tokio::runtime::Runtime, builder: TreeBuilder) -> surrealkv::Tree {
    rt.block_on(async { builder.build().expect("tree opens") })
}

/// Opens the tree at `kv` with a 4 MiB memtable and a value log that takes values above 100 bytes.
fn open_with_value_log(rt: &tokio::runtime::Runtime, kv: &Path) -> surrealkv::Tree {
    build_tree(
        rt,
        store_at(kv, SMALL_MEMTABLE)
            .with_enable_vlog(true)
            .with_vlog_value_threshold(100),
    )
}

/// Opens the tree at `kv` with engine defaults but a 4 MiB memtable and subcompactions of at least `sub` bytes.
fn open_tree(rt: &tokio::runtime::Runtime, kv: &Path, sub: u64) -> surrealkv::Tree {
    build_tree(
        rt,
        store_at(kv, SMALL_MEMTABLE).with_subcompaction_min_bytes(sub),
    )
}

/// One session: opens the tree, writes `sets` and deletes `deletes` in one transaction, and closes the tree (its
/// memtable becomes one level-0 table).
fn session(
    rt: &tokio::runtime::Runtime,
    kv: &Path,
    sub: u64,
    sets: &[(String, Vec<u8>)],
    deletes: &[String],
) {
    let tree = open_tree(rt, kv, sub);
    let mut txn = tree.begin().expect("write transaction");
    for (key, value) in sets {
        txn.set(key.as_bytes(), value).expect("set");
    }
    for key in deletes {
        txn.delete(key.as_bytes()).expect("delete");
    }
    rt.block_on(txn.commit()).expect("commit");
    rt.block_on(tree.close()).expect("close");
}

/// A new store after four sessions of 5,000 overlapping keys each (`key{i}-{session}`, 400 bytes, written
/// with subcompactions of at least `sub` bytes): its folder (kept while the guard lives), path, runtime and
/// table files once the fourth close has compacted level 0.
fn four_large_sessions(
    sub: u64,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    tokio::runtime::Runtime,
    Vec<(String, u64)>,
) {
    let (dir, kv, rt) = new_store();
    for s in 0..4u8 {
        let sets: Vec<(String, Vec<u8>)> = (0..5_000)
            .map(|i| (format!("key{i:06}-{s}"), vec![s; 400]))
            .collect();
        session(&rt, &kv, sub, &sets, &[]);
        let tables = sst_files(&kv);
        if s < 3 {
            assert_eq!(
                tables.len(),
                usize::from(s) + 1,
                "one level-0 table per session: {tables:?}"
            );
        }
    }
    let tables = sst_files(&kv);
    (dir, kv, rt, tables)
}

/// What `four_large_sessions` wrote.
fn four_large_sessions_contents() -> std::collections::BTreeMap<String, Vec<u8>> {
    (0..5_000)
        .flat_map(|i| (0..4u8).map(move |s| (format!("key{i:06}-{s}"), vec![s; 400])))
        .collect()
}

/// Every key of the tree in order, with its value (the tree opened with subcompactions of at least `sub` bytes).
fn contents(rt: &tokio::runtime::Runtime, kv: &Path, sub: u64) -> Vec<(String, Vec<u8>)> {
    let tree = open_tree(rt, kv, sub);
    let txn = tree.begin().expect("read transaction");
    let out = scan(&txn);
    drop(txn);
    rt.block_on(tree.close()).expect("close");
    out
}

/// Every `key…` key in order, with its value, as `txn` sees them.
fn scan(txn: &surrealkv::Transaction) -> Vec<(String, Vec<u8>)> {
    let mut it = txn
        .range(b"key".as_slice(), b"kez".as_slice())
        .expect("range");
    let mut out = Vec::new();
    let mut ok = it.seek_first().expect("seek");
    while ok {
        out.push((
            String::from_utf8(it.key().user_key().to_vec()).expect("utf-8 key"),
            it.value().expect("value"),
        ));
        ok = it.next().expect("next");
    }
    out
}

/// The close whose flush brings level 0 to SurrealKV's compaction trigger (four tables) compacts it, so the
/// next session does not run that compaction beside its own work (nor wait for it in its close). Released
/// SurrealKV leaves it to the next open.
#[test]
fn the_close_that_brings_level_0_to_its_trigger_compacts_it() {
    let (_dir, kv, rt, tables) = four_large_sessions(SUBCOMPACTION);
    assert_eq!(
        tables.len(),
        1,
        "the fourth close merged the four level-0 tables into one: {tables:?}"
    );
    let all: std::collections::BTreeMap<String, Vec<u8>> =
        contents(&rt, &kv, SUBCOMPACTION).into_iter().collect();
    assert!(
        all == four_large_sessions_contents(),
        "every key survives the compaction with its value"
    );
}

/// Small level-0 tables merge among themselves, leaving the large level-1 table they overlap as it is: moved
/// down, four small sessions' tables would rewrite the whole level-1 table (SurrealKV writes one table per
/// compaction), which for a JDK-sized graph took every fourth one-file re-extraction from 0.6 s to 1.2-1.3 s.
/// Overwrites, deletes (of keys only level 1 holds) and re-inserts keep their order through both merges.
#[test]
fn small_level_0_tables_merge_among_themselves_and_leave_level_1_as_it_is() {
    let (_dir, kv, rt, level1) = four_large_sessions(SUBCOMPACTION);
    assert_eq!(level1.len(), 1, "one level-1 table: {level1:?}");
    let mut expected = four_large_sessions_contents();

    // Eight small sessions: the fourth merges four tables, the sixth the merged one and two more.
    let mut level0 = 0;
    for round in 0..2u8 {
        for s in 0..4u8 {
            let tag = 10 + round * 4 + s;
            let n = usize::from(round * 4 + s);
            // Overwrite ten keys, delete ten keys, add ten keys, and re-insert a key deleted one session before.
            let mut sets: Vec<(String, Vec<u8>)> = (0..10)
                .map(|i| (format!("key{:06}-0", n * 100 + i), vec![tag; 400]))
                .chain((0..10).map(|i| (format!("key{:06}-new", n * 100 + i), vec![tag; 40])))
                .collect();
            if n > 0 {
                sets.push((format!("key{:06}-1", (n - 1) * 100), vec![tag; 7]));
            }
            let deletes: Vec<String> = (0..10)
                .map(|i| format!("key{:06}-1", n * 100 + i))
                .collect();
            session(&rt, &kv, SUBCOMPACTION, &sets, &deletes);
            for key in &deletes {
                expected.remove(key);
            }
            expected.extend(sets);
            let tables = sst_files(&kv);
            assert!(
                tables.contains(&level1[0]),
                "round {round}, session {s}: the level-1 table {level1:?} was rewritten: {tables:?}"
            );
            // One more level-0 table, and at the fourth (SurrealKV's trigger) all of them merged into one.
            level0 = if level0 + 1 == 4 { 1 } else { level0 + 1 };
            assert_eq!(
                tables.len() - 1,
                level0,
                "round {round}, session {s}: level-0 tables {tables:?}"
            );
        }
    }
    let got: std::collections::BTreeMap<String, Vec<u8>> =
        contents(&rt, &kv, SUBCOMPACTION).into_iter().collect();
    assert_eq!(got.len(), expected.len(), "key count");
    assert!(
        got == expected,
        "every key holds its last value and deleted keys stay deleted"
    );
}

/// A large compaction runs as one subcompaction per core (at most four), each merging one key range into a
/// table of its own, so a close that compacts a JDK-sized store (170 MB) uses both cores of a 2-core machine.
/// Point reads (which look in one level-1 table) and a scan across the tables find every key, also after a
/// second compaction that merges four level-0 tables with the split level 1.
#[test]
fn a_large_compaction_writes_one_table_per_core_over_disjoint_key_ranges() {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    // 8 MB of tables in, at least 1 MiB per subcompaction: one per core.
    let sub = 1 << 20;
    let (_dir, kv, rt, tables) = four_large_sessions(sub);
    assert_eq!(
        tables.len(),
        cores,
        "one level-1 table per core: {tables:?}"
    );
    let mut expected = four_large_sessions_contents();
    let check = |expected: &std::collections::BTreeMap<String, Vec<u8>>| {
        let got: std::collections::BTreeMap<String, Vec<u8>> =
            contents(&rt, &kv, sub).into_iter().collect();
        assert_eq!(got.len(), expected.len(), "key count");
        assert!(
            &got == expected,
            "a scan finds every key with its last value"
        );
        let tree = open_tree(&rt, &kv, sub);
        let txn = tree.begin().expect("read transaction");
        for (key, value) in expected.iter().step_by(97) {
            let found = txn.get(key.as_bytes()).expect("get");
            assert_eq!(
                found.as_deref(),
                Some(value.as_slice()),
                "point read of {key}"
            );
        }
        drop(txn);
        rt.block_on(tree.close()).expect("close");
    };
    check(&expected);

    // Four sessions that overwrite every other key of session 0 and 1: level 0 is too large to merge into
    // itself, so it moves down into the split level 1, which is split again.
    for s in 0..4u8 {
        let sets: Vec<(String, Vec<u8>)> = (0..5_000)
            .step_by(2)
            .map(|i| (format!("key{i:06}-{}", s % 2), vec![20 + s; 300]))
            .collect();
        session(&rt, &kv, sub, &sets, &[]);
        expected.extend(sets);
    }
    let after = sst_files(&kv);
    assert_eq!(
        after.len(),
        cores,
        "level 0 merged into level 1, one table per core: {after:?}"
    );
    assert!(
        after.iter().all(|t| !tables.contains(t)),
        "level 1 was rewritten: {tables:?} -> {after:?}"
    );
    check(&expected);
}

/// Patch 6: a table writer keeps a 4-byte hash per key for the table's bloom filter instead of a copy of the
/// key. The filter built from the hashes must be the filter built from the keys (same bytes, so tables written
/// before and after read alike); a wrong one makes point reads miss keys.
#[test]
fn table_filters_from_key_hashes_equal_filters_from_keys() {
    let policy = surrealkv::Options::default()
        .filter_policy
        .expect("SurrealKV's default options have a bloom filter");
    // Key lengths 0..=40 cover every tail length of the hash's 4-byte steps.
    let keys: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| {
            format!("/*nanodex*g1*function*{i:08}*{:x<20}", "").as_bytes()[..(i % 41) as usize]
                .to_vec()
        })
        .chain((0..10_000u32).map(|i| format!("/*nanodex*g1*calls*{i:08}").into_bytes()))
        .collect();
    let hashes: Vec<u32> = keys
        .iter()
        .map(|k| policy.key_hash(k).expect("the default policy hashes keys"))
        .collect();
    let filter = policy.create_filter_from_hashes(&hashes);
    assert_eq!(filter, policy.create_filter(&keys), "same filter bytes");
    assert!(keys.iter().all(|k| policy.may_contain(&filter, k)));
    let false_positives = (0..10_000)
        .filter(|i| policy.may_contain(&filter, format!("/*absent*{i:08}").as_bytes()))
        .count();
    // 10 bits per key: about 1%.
    assert!(
        false_positives < 500,
        "{false_positives} of 10,000 absent keys pass the filter"
    );
}

/// Patch 6 reads each value in place while a memtable is flushed (the release copied it twice): values above
/// the value-log threshold move to the value log, smaller ones stay in the table, and both read back after the
/// flush, by point reads and by a scan, also after a compaction has rewritten the tables.
#[test]
fn flushed_values_read_back_from_the_table_and_the_value_log() {
    let (_dir, kv, rt) = new_store();
    let open = || open_with_value_log(&rt, &kv);
    let value = |i: usize, s: usize| -> Vec<u8> {
        let len = if i.is_multiple_of(3) {
            500 + i % 7
        } else {
            10 + i % 50
        };
        (0..len).map(|j| (i * 31 + j * 7 + s) as u8).collect()
    };
    let mut expected = std::collections::BTreeMap::new();
    // Four sessions, each closed (flushed): the fourth close compacts level 0.
    for s in 0..4 {
        let tree = open();
        let mut txn = tree.begin().expect("write transaction");
        for i in (s..2_000).step_by(2) {
            let key = format!("key{i:06}");
            txn.set(key.as_bytes(), value(i, s)).expect("set");
            expected.insert(key, value(i, s));
        }
        rt.block_on(txn.commit()).expect("commit");
        rt.block_on(tree.close()).expect("close");
        let tree = open();
        let txn = tree.begin().expect("read transaction");
        for (key, want) in &expected {
            let got = txn.get(key.as_bytes()).expect("get");
            assert_eq!(got.as_deref(), Some(want.as_slice()), "point read of {key}");
        }
        assert_eq!(
            txn.get(b"key999999").expect("get"),
            None,
            "an absent key is absent"
        );
        let scanned = scan(&txn);
        drop(txn);
        rt.block_on(tree.close()).expect("close");
        assert!(
            scanned.into_iter().eq(expected.clone()),
            "a scan after session {s} finds every key with its last value"
        );
    }
}

/// Patch 7: a store whose commits never ask for an fsync (SurrealDB's `sync=never`, the `.next` store of a
/// full rebuild) hands a rotated log segment to the OS instead of fsyncing it under the memtable's write lock
/// (the next sync asked for syncs it, if it still exists), and its commit oracle hashes its key fingerprints by
/// identity. Neither changes what the store holds or refuses: everything written across several rotations
/// reads back after a reopen, a sync after them succeeds, and of two transactions that write one key, the
/// second to commit is refused.
#[test]
fn a_store_that_never_syncs_rotates_its_log_and_still_refuses_conflicting_writes() {
    let (_dir, kv, rt) = new_store();
    // 64 KiB memtables against about 1 MB written: a rotation (and a flush) every few commits.
    let tree = build_tree(&rt, store_at(&kv, 64 * 1024));
    let mut want = std::collections::BTreeMap::new();
    for c in 0..40u8 {
        let mut txn = tree.begin().expect("write transaction");
        for i in 0..100 {
            let (key, value) = (format!("key{c:03}-{i:03}"), vec![c; 200]);
            txn.set(key.as_bytes(), &value).expect("set");
            want.insert(key, value);
        }
        rt.block_on(txn.commit()).expect("commit");
    }
    // Rotations happened: a memtable was flushed into a table while the store was open.
    let started = Instant::now();
    while sst_files(&kv).is_empty() {
        assert!(
            started.elapsed() < STUCK,
            "no memtable was flushed while the store was open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first sync asked for also syncs the rotated segments that still exist (the flushed ones are gone).
    tree.flush_wal(true)
        .expect("a sync after rotations that did not sync");
    let (mut first, mut second) = (
        tree.begin().expect("write transaction"),
        tree.begin().expect("write transaction"),
    );
    first.set(b"key-shared", b"first").expect("set");
    second.set(b"key-shared", b"second").expect("set");
    rt.block_on(first.commit()).expect("the first commit");
    let refused = rt.block_on(second.commit());
    assert!(
        matches!(refused, Err(surrealkv::Error::TransactionWriteConflict)),
        "the second writer of a key committed after the first: {refused:?}"
    );
    want.insert("key-shared".to_string(), b"first".to_vec());
    rt.block_on(tree.close()).expect("close");
    let got: std::collections::BTreeMap<String, Vec<u8>> =
        contents(&rt, &kv, SUBCOMPACTION).into_iter().collect();
    assert_eq!(got.len(), want.len(), "keys after reopening");
    assert!(got == want, "values after reopening differ");
}

/// Patch 8: `Tree::ingest` loads keys that arrive sorted into new tables of the bottom level, beside what the
/// store holds (in its memtable and its tables): both read back (point reads and a scan, values inline and in the
/// value log) before and after a reopen, a commit after the ingest overwrites an ingested key, and a second ingest
/// after the first one's keys adds to it. Refused, with the store left as it was (no table file added): keys out
/// of order, a key the store holds, a key the store deleted (its tombstone would hide the ingested value
/// otherwise), and keys in the range of the bottom level's tables.
#[test]
fn an_ingest_loads_sorted_keys_beside_what_the_store_holds() {
    let (_dir, kv, rt) = new_store();
    let open = || open_with_value_log(&rt, &kv);
    let value = |i: usize| -> Vec<u8> {
        let len = if i.is_multiple_of(5) {
            300
        } else {
            20 + i % 40
        };
        (0..len).map(|j| (i * 13 + j) as u8).collect()
    };
    let mut want = std::collections::BTreeMap::new();
    let tree = open();
    // Committed first, interleaved with the keys ingested below: a key that stays, and one deleted again.
    let mut txn = tree.begin().expect("write transaction");
    for i in (0..20_000).step_by(10) {
        let key = format!("key{i:06}-a");
        txn.set(key.as_bytes(), b"committed").expect("set");
        want.insert(key, b"committed".to_vec());
    }
    txn.set(b"key000500-d", b"deleted").expect("set");
    rt.block_on(txn.commit()).expect("commit");
    let mut txn = tree.begin().expect("write transaction");
    txn.delete(b"key000500-d").expect("delete");
    rt.block_on(txn.commit()).expect("commit");
    let tables_before = sst_files(&kv).len();
    // About 1.2 MB in tables of 256 KiB: several tables.
    let mut ingest = tree
        .ingest()
        .expect("an ingest starts")
        .with_table_bytes(256 << 10);
    for i in 0..20_000 {
        let key = format!("key{i:06}-b");
        ingest.add(key.as_bytes(), &value(i)).expect("add");
        want.insert(key, value(i));
    }
    // A finish that flushes the memtable schedules a log cleanup on the runtime, as a flush does.
    let entered = rt.enter();
    ingest.finish().expect("the ingest finishes");
    drop(entered);
    assert!(
        sst_files(&kv).len() >= tables_before + 4,
        "the ingest wrote several tables: {:?}",
        sst_files(&kv)
    );
    let check = |tree: &surrealkv::Tree, want: &std::collections::BTreeMap<String, Vec<u8>>| {
        let txn = tree.begin().expect("read transaction");
        for i in (0..20_000).step_by(7) {
            let key = format!("key{i:06}-b");
            let got = txn.get(key.as_bytes()).expect("get");
            assert_eq!(
                got.as_deref(),
                Some(want[&key].as_slice()),
                "point read of {key}"
            );
        }
        assert_eq!(
            txn.get(b"key000500-d").expect("get"),
            None,
            "the deleted key"
        );
        let scanned = scan(&txn);
        assert_eq!(scanned.len(), want.len(), "keys scanned");
        assert!(
            scanned.into_iter().eq(want.clone()),
            "a scan finds every key with its value"
        );
    };
    check(&tree, &want);
    // A commit after the ingest is newer than it.
    let mut txn = tree.begin().expect("write transaction");
    txn.set(b"key000001-b", b"after").expect("set");
    rt.block_on(txn.commit()).expect("commit");
    want.insert("key000001-b".into(), b"after".to_vec());
    check(&tree, &want);
    rt.block_on(tree.close()).expect("close");

    let tree = open();
    check(&tree, &want);
    let tables = sst_files(&kv);
    let mut out_of_order = tree.ingest().expect("an ingest starts");
    out_of_order.add(b"key000002-c", b"x").expect("add");
    assert!(
        out_of_order.add(b"key000001-c", b"x").is_err(),
        "a key that sorts before the previous one is refused"
    );
    drop(out_of_order);
    // Each refused for its own reason: a key in a level-0 table (live or deleted), or a range the bottom level has.
    for (keys, why, error) in [
        (
            ["key000000-c", "key000010-a", "key000999-c"],
            "a key the store holds",
            "in the tree already",
        ),
        (
            ["key000000-c", "key000500-d", "key000999-c"],
            "a key the store deleted",
            "in the tree already",
        ),
        (
            ["key000000-c", "key000001-c", "key000999-c"],
            "a range the bottom level holds",
            "bottom level overlaps",
        ),
    ] {
        let mut ingest = tree.ingest().expect("an ingest starts");
        for key in keys {
            ingest.add(key.as_bytes(), b"x").expect("add");
        }
        let _entered = rt.enter();
        let refused = ingest.finish().expect_err(why);
        assert!(refused.to_string().contains(error), "{why}: {refused}");
    }
    assert_eq!(
        sst_files(&kv),
        tables,
        "refused ingests leave no table behind"
    );
    check(&tree, &want);
    // A second ingest after the last key: beside the first one in the bottom level.
    let mut ingest = tree.ingest().expect("an ingest starts");
    for i in 20_000..21_000 {
        let key = format!("key{i:06}-c");
        ingest.add(key.as_bytes(), &value(i)).expect("add");
        want.insert(key, value(i));
    }
    {
        let _entered = rt.enter();
        ingest.finish().expect("a second ingest finishes");
    }
    check(&tree, &want);
    rt.block_on(tree.close()).expect("close");
}
