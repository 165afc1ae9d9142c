use std::fs::File as SysFile;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use crate::bplustree::tree::DiskBPlusTree;
use crate::compaction::{CompactionChoice, CompactionInput, CompactionStrategy};
use crate::error::{BackgroundErrorHandler, Result};
use crate::iter::{BoxedLSMIterator, CompactionIterator};
use crate::levels::{write_manifest_to_disk, LevelManifest, ManifestChangeSet};
use crate::lsm::{cleanup_vlog_and_index, CoreInner};
use crate::memtable::ImmutableMemtables;
use crate::snapshot::SnapshotTracker;
use crate::sstable::index_block::IndexIterator;
use crate::sstable::table::{IndexType, Table, TableWriter, TABLE_WRITE_BUFFER};
use crate::vfs::File;
use crate::vlog::VLog;
use crate::{Comparator, InternalKey, InternalKeyRange, Options as LSMOptions};

/// RAII guard to ensure tables are unhidden if compaction fails
struct HiddenTablesGuard {
	level_manifest: Arc<RwLock<LevelManifest>>,
	table_ids: Vec<u64>,
	committed: bool,
}

impl HiddenTablesGuard {
	fn new(level_manifest: Arc<RwLock<LevelManifest>>, table_ids: &[u64]) -> Self {
		Self {
			level_manifest,
			table_ids: table_ids.to_vec(),
			committed: false,
		}
	}

	fn commit(&mut self) {
		self.committed = true;
	}
}

impl Drop for HiddenTablesGuard {
	fn drop(&mut self) {
		if !self.committed {
			if let Ok(mut levels) = self.level_manifest.write() {
				levels.unhide_tables(&self.table_ids);
			}
		}
	}
}

/// Compaction options
pub(crate) struct CompactionOptions {
	pub(crate) lopts: Arc<LSMOptions>,
	pub(crate) level_manifest: Arc<RwLock<LevelManifest>>,
	pub(crate) immutable_memtables: Arc<RwLock<ImmutableMemtables>>,
	pub(crate) vlog: Option<Arc<VLog>>,
	pub(crate) error_handler: Arc<BackgroundErrorHandler>,
	/// Snapshot tracker for snapshot-aware compaction.
	///
	/// During compaction, we query this to get the list of active snapshot
	/// sequence numbers. Versions visible to any active snapshot must be
	/// preserved (unless hidden by a newer version in the same visibility boundary).
	pub(crate) snapshot_tracker: SnapshotTracker,
	/// Versioned B+ tree index for cleanup after VLog GC
	pub(crate) versioned_index: Option<Arc<parking_lot::RwLock<DiskBPlusTree>>>,
}

impl CompactionOptions {
	pub(crate) fn from(tree: &CoreInner) -> Self {
		Self {
			lopts: Arc::clone(&tree.opts),
			level_manifest: Arc::clone(&tree.level_manifest),
			immutable_memtables: Arc::clone(&tree.immutable_memtables),
			vlog: tree.vlog.clone(),
			error_handler: Arc::clone(&tree.error_handler),
			snapshot_tracker: tree.snapshot_tracker.clone(),
			versioned_index: tree.versioned_index.clone(),
		}
	}
}

/// Handles the compaction state and operations
pub(crate) struct Compactor {
	pub(crate) options: CompactionOptions,
	pub(crate) strategy: Arc<dyn CompactionStrategy>,
}

impl Compactor {
	pub(crate) fn new(options: CompactionOptions, strategy: Arc<dyn CompactionStrategy>) -> Self {
		Self {
			options,
			strategy,
		}
	}

	pub(crate) fn compact(&self) -> Result<()> {
		let levels_guard = self.options.level_manifest.write()?;
		let choice = self.strategy.pick_levels(&levels_guard)?;

		match choice {
			CompactionChoice::Merge(input) => self.merge_tables(levels_guard, &input),
			CompactionChoice::Skip => Ok(()),
		}
	}

	fn merge_tables(
		&self,
		mut levels: RwLockWriteGuard<'_, LevelManifest>,
		input: &CompactionInput,
	) -> Result<()> {
		// Hide tables that are being merged
		levels.hide_tables(&input.tables_to_merge);

		// Create guard to ensure tables are unhidden on error
		let mut guard = HiddenTablesGuard::new(
			Arc::clone(&self.options.level_manifest),
			&input.tables_to_merge,
		);

		let tables = levels.get_all_tables();
		let to_merge: Vec<_> =
			input.tables_to_merge.iter().filter_map(|&id| tables.get(&id).cloned()).collect();

		drop(levels);

		// nanodex patch 5: the merge runs as up to `MAX_SUBCOMPACTIONS` subcompactions on threads of their own,
		// each over one key range and writing its own table (see `split_keys`).
		let splits = split_keys(&to_merge, input, self.options.lopts.subcompaction_min_bytes);
		let ranges = key_ranges(&splits);
		let parts: Vec<Result<Option<Arc<Table>>>> = std::thread::scope(|scope| {
			let handles: Vec<_> = ranges
				.iter()
				.map(|range| {
					let to_merge = &to_merge;
					scope.spawn(move || self.merge_range(to_merge, range.clone(), input))
				})
				.collect();
			handles
				.into_iter()
				.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
				.collect()
		});
		let mut new_tables = Vec::new();
		let mut failed = None;
		for part in parts {
			match part {
				Ok(Some(table)) => new_tables.push(table),
				Ok(None) => {}
				Err(e) => failed = failed.or(Some(e)),
			}
		}
		if let Some(e) = failed {
			// Guard will unhide tables on drop; the other parts' tables are not referenced.
			for table in &new_tables {
				let _ = std::fs::remove_file(self.get_table_path(table.id));
			}
			return Err(e);
		}

		// Update manifest - this will commit the guard on success
		self.update_manifest(input, new_tables, &mut guard)?;

		self.cleanup_old_tables(input);

		Ok(())
	}

	/// nanodex patch 5: merges the part of `to_merge` inside `range` into a new table; `None` when the range
	/// holds no entry to keep.
	fn merge_range(
		&self,
		to_merge: &[Arc<Table>],
		range: InternalKeyRange,
		input: &CompactionInput,
	) -> Result<Option<Arc<Table>>> {
		// Keep tables alive while iterators borrow from them
		let iterators: Vec<BoxedLSMIterator<'_>> = to_merge
			.iter()
			.filter_map(|table| table.iter(Some(range.clone())).ok())
			// nanodex patch: the input tables are deleted when the compaction ends; their blocks must not
			// evict the cache's blocks of live tables.
			.map(|iter| iter.without_filling_cache())
			.map(|iter| Box::new(iter) as BoxedLSMIterator<'_>)
			.collect();

		// Create new table
		let new_table_id = self.options.level_manifest.read().unwrap().next_table_id();
		let new_table_path = self.get_table_path(new_table_id);

		// Write merged data; open the table only if one was created
		if self.write_merged_table(&new_table_path, new_table_id, iterators, input)? {
			match self.open_table(new_table_id, &new_table_path) {
				Ok(table) => Ok(Some(table)),
				Err(e) => {
					let _ = std::fs::remove_file(&new_table_path);
					Err(e)
				}
			}
		} else {
			Ok(None)
		}
	}

	/// Returns true if a table file was created and finished, false otherwise
	fn write_merged_table(
		&self,
		path: &Path,
		table_id: u64,
		merge_iter: Vec<BoxedLSMIterator<'_>>,
		input: &CompactionInput,
	) -> Result<bool> {
		// nanodex patch 6: buffered, as a memtable flush.
		let file = std::io::BufWriter::with_capacity(TABLE_WRITE_BUFFER, SysFile::create(path)?);
		let mut writer =
			TableWriter::new(file, table_id, Arc::clone(&self.options.lopts), input.target_level);

		// Get active snapshots for snapshot-aware compaction
		// This is a snapshot of the snapshot list at the start of compaction.
		// Any snapshots created during compaction will be handled by the next compaction.
		let snapshots = self.options.snapshot_tracker.get_all_snapshots();

		// Create a compaction iterator that filters tombstones and respects snapshots
		let max_level = self.options.lopts.level_count - 1;
		let is_bottom_level = input.target_level >= max_level;
		let mut comp_iter = CompactionIterator::new(
			merge_iter,
			Arc::clone(&self.options.lopts.internal_comparator) as Arc<dyn Comparator>,
			is_bottom_level,
			self.options.lopts.enable_versioning,
			self.options.lopts.versioned_history_retention_ns,
			Arc::clone(&self.options.lopts.clock),
			snapshots,
		);

		let mut entries = 0;
		for item in &mut comp_iter {
			let (key, value) = item?;
			writer.add(key, &value)?;
			entries += 1;
		}

		if entries == 0 {
			// No entries - drop writer and remove empty file
			drop(writer);
			let _ = std::fs::remove_file(path);
			return Ok(false);
		}

		writer.finish()?;

		// Durability fix: the SST's data and its directory entry must be
		// durable BEFORE the manifest (fsynced in update_manifest) references
		// this table. Otherwise a power loss after the manifest commit leaves
		// a durable manifest pointing at a zero-byte table, with the merged
		// inputs already deleted (surrealdb/surrealdb#7426).
		crate::vfs::fsync_file(path)?;
		crate::lsm::fsync_directory(self.options.lopts.sstable_dir())?;

		Ok(true)
	}

	fn update_manifest(
		&self,
		input: &CompactionInput,
		new_tables: Vec<Arc<Table>>,
		guard: &mut HiddenTablesGuard,
	) -> Result<()> {
		let mut manifest = self.options.level_manifest.write()?;
		let _imm_guard = self.options.immutable_memtables.write();

		// Check for table ID collision if adding a new table
		for table in &new_tables {
			if input.tables_to_merge.contains(&table.id) {
				return Err(crate::error::Error::TableIDCollision(table.id));
			}
		}

		let mut changeset = ManifestChangeSet::default();

		// Delete old tables
		for (level_idx, level) in manifest.levels.get_levels().iter().enumerate() {
			for &table_id in &input.tables_to_merge {
				if level.tables.iter().any(|t| t.id == table_id) {
					changeset.deleted_tables.insert((level_idx as u8, table_id));
				}
			}
		}

		// Add the new tables
		for table in new_tables {
			changeset.new_tables.push((input.target_level, table));
		}

		let rollback = manifest.apply_changeset(&changeset)?;

		// Write manifest to disk - if this fails, revert in-memory state
		if let Err(e) = write_manifest_to_disk(&manifest) {
			manifest.revert_changeset(rollback);
			self.options
				.error_handler
				.set_error(e.clone(), crate::error::BackgroundErrorReason::ManifestWrite);
			return Err(e);
		}

		// Unhide tables before committing guard (they'll be removed from manifest anyway)
		manifest.unhide_tables(&input.tables_to_merge);

		// Commit guard - tables are now properly handled in manifest
		guard.commit();

		// After successful manifest commit, cleanup obsolete vlog files and stale index entries
		let min_oldest_vlog = manifest.min_oldest_vlog_file_id();
		cleanup_vlog_and_index(
			&self.options.vlog,
			&self.options.versioned_index,
			min_oldest_vlog,
			"compaction",
		);

		Ok(())
	}

	fn get_table_path(&self, table_id: u64) -> PathBuf {
		self.options.lopts.sstable_file_path(table_id)
	}

	fn cleanup_old_tables(&self, input: &CompactionInput) {
		for &table_id in &input.tables_to_merge {
			let path = self.options.lopts.sstable_file_path(table_id);
			if let Err(e) = std::fs::remove_file(path) {
				// Log error but continue with cleanup
				log::warn!("Failed to remove old table file: {e}");
			}
		}
	}

	fn open_table(&self, table_id: u64, table_path: &Path) -> Result<Arc<Table>> {
		let file = SysFile::open(table_path)?;
		let file: Arc<dyn File> = Arc::new(file);
		let file_size = file.size()?;

		Ok(Arc::new(Table::new(table_id, Arc::clone(&self.options.lopts), file, file_size)?))
	}
}

/// nanodex patch 5: most subcompactions of one compaction (and at most one per core).
pub(crate) const MAX_SUBCOMPACTIONS: usize = 4;

/// nanodex patch 5: user keys that split a compaction into subcompactions of about equal size, ascending and
/// distinct; none (one merge) when the output is level 0, whose tables must each hold a whole merge, or when the
/// input is below twice `min_bytes` (`Options::subcompaction_min_bytes`) or the machine has one core. The
/// candidates are the index keys of the input tables' data blocks (each block about `block_size` bytes), so
/// the ranges hold about equal numbers of blocks.
pub(crate) fn split_keys(
	tables: &[Arc<Table>],
	input: &CompactionInput,
	min_bytes: u64,
) -> Vec<Vec<u8>> {
	if input.target_level == 0 {
		return Vec::new();
	}
	let bytes: u64 = tables.iter().map(|t| t.file_size).sum();
	let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
	let parts = cores.min(MAX_SUBCOMPACTIONS).min((bytes / min_bytes.max(1)) as usize);
	if parts < 2 {
		return Vec::new();
	}
	let mut keys: Vec<Vec<u8>> = Vec::new();
	for table in tables {
		let IndexType::Partitioned(index) = &table.index_block;
		let mut it = IndexIterator::new(index);
		if it.seek_to_first().is_err() {
			return Vec::new();
		}
		while it.valid() {
			keys.push(InternalKey::user_key_from_encoded(it.key()).to_vec());
			if !matches!(it.next(), Ok(true)) {
				break;
			}
		}
	}
	if keys.is_empty() {
		return Vec::new();
	}
	keys.sort_unstable();
	let mut splits: Vec<Vec<u8>> = (1..parts).map(|i| keys[i * keys.len() / parts].clone()).collect();
	splits.dedup();
	splits
}

/// nanodex patch 5: the key ranges between `splits`: below the first, between each two, from the last up.
pub(crate) fn key_ranges(splits: &[Vec<u8>]) -> Vec<InternalKeyRange> {
	let mut ranges = Vec::with_capacity(splits.len() + 1);
	let mut lower: Bound<&[u8]> = Bound::Unbounded;
	for split in splits {
		ranges.push(crate::user_range_to_internal_range(lower, Bound::Excluded(split.as_slice())));
		lower = Bound::Included(split.as_slice());
	}
	ranges.push(crate::user_range_to_internal_range(lower, Bound::Unbounded));
	ranges
}
