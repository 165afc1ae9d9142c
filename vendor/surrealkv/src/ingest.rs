//! nanodex patch 8: loading keys that arrive sorted straight into new tables of the bottom level
//! ([`Tree::ingest`]), without the write-ahead log, the memtable and the compactions that a transaction's
//! writes go through. RocksDB calls this ingesting external files.
//!
//! The tables are written like a memtable flush writes them (values above the value-log threshold go to the
//! value log), then added to the bottom level in one manifest change. All of an ingest's entries carry one
//! sequence number, the next one after the last commit, which then becomes the last visible one.

use std::cmp::Ordering as CmpOrdering;
use std::fs::File as SysFile;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::levels::{write_manifest_to_disk, ManifestChangeSet};
use crate::lsm::{fsync_directory, Tree};
use crate::memtable::maybe_separate_to_vlog;
use crate::sstable::table::{Table, TableWriter, TABLE_WRITE_BUFFER};
use crate::vfs::File;
use crate::vlog::VALUE_LOCATION_VERSION;
use crate::{InternalKey, InternalKeyKind, LSMIterator as _, INTERNAL_KEY_SEQ_NUM_MAX};

/// Bytes of keys and values after which an ingest starts its next table.
pub const INGEST_TABLE_BYTES: u64 = 64 << 20;

/// A bulk load under way: [`Ingest::add`] each key in ascending order, then [`Ingest::finish`]. Dropped
/// unfinished (or failed), it deletes the tables it wrote and leaves the tree as it was.
pub struct Ingest<'a> {
	tree: &'a Tree,
	seq: u64,
	timestamp: u64,
	level: u8,
	table_bytes: u64,
	/// The table being written: its id, path, writer and the bytes added to it.
	writer: Option<(u64, PathBuf, TableWriter<BufWriter<SysFile>>, u64)>,
	/// Tables written so far, in key order, and their paths.
	tables: Vec<(Arc<Table>, PathBuf)>,
	last: Option<Vec<u8>>,
	value: Vec<u8>,
	finished: bool,
}

impl Tree {
	/// Starts a bulk load into the bottom level (nanodex patch 8). The keys must be added in strictly
	/// ascending order, and none of them may be in the tree already, not even as a deletion:
	/// [`Ingest::finish`] checks both, and that no commit ran meanwhile. Nothing may write to the tree until
	/// the ingest is finished or dropped. Refused on a versioned tree (its history index would miss the keys).
	/// The check for existing keys reads every entry of the tables whose key range overlaps the ingested one,
	/// so an ingest is meant for loading a store, not for adding to a large one.
	pub fn ingest(&self) -> Result<Ingest<'_>> {
		let inner = &self.core.inner;
		if inner.opts.enable_versioning {
			return Err(Error::Other("ingest: not supported on a versioned tree".into()));
		}
		Ok(Ingest {
			tree: self,
			seq: inner.visible_seq_num.load(Ordering::Acquire) + 1,
			timestamp: inner.opts.clock.now(),
			level: inner.opts.level_count - 1,
			table_bytes: INGEST_TABLE_BYTES,
			writer: None,
			tables: Vec::new(),
			last: None,
			value: Vec::new(),
			finished: false,
		})
	}
}

impl Ingest<'_> {
	/// Starts a new table after `bytes` of keys and values (default [`INGEST_TABLE_BYTES`]).
	pub fn with_table_bytes(mut self, bytes: u64) -> Self {
		self.table_bytes = bytes.max(1);
		self
	}

	/// Adds `key` with `value`; `key` must sort after the key added before it.
	pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
		let opts = Arc::clone(&self.tree.core.inner.opts);
		if let Some(last) = &self.last {
			if opts.comparator.compare(last, key) != CmpOrdering::Less {
				return Err(Error::Other(format!(
					"ingest: key {key:?} does not sort after the key added before it ({last:?})"
				)));
			}
		}
		if self.writer.is_none() {
			let id = self.tree.core.inner.level_manifest.read()?.next_table_id();
			let path = opts.sstable_file_path(id);
			let file = BufWriter::with_capacity(TABLE_WRITE_BUFFER, SysFile::create(&path)?);
			let writer = TableWriter::new(file, id, Arc::clone(&opts), self.level);
			self.writer = Some((id, path, writer, 0));
		}
		// The value as a memtable holds it (an inline `ValueLocation`), then as a flush writes it.
		self.value.clear();
		self.value.extend_from_slice(&[0, VALUE_LOCATION_VERSION]);
		self.value.extend_from_slice(value);
		let ikey = InternalKey::new(key.to_vec(), self.seq, InternalKeyKind::Set, self.timestamp);
		let vlog = self.tree.core.inner.vlog.as_ref();
		let stored = maybe_separate_to_vlog(&self.value, &ikey, vlog, opts.vlog_value_threshold)?;
		let (_, _, writer, bytes) = self.writer.as_mut().expect("set above");
		writer.add(ikey, &stored)?;
		*bytes += (key.len() + value.len()) as u64;
		let full = *bytes >= self.table_bytes;
		match &mut self.last {
			Some(last) => {
				last.clear();
				last.extend_from_slice(key);
			}
			None => self.last = Some(key.to_vec()),
		}
		if full {
			self.finish_table()?;
		}
		Ok(())
	}

	fn finish_table(&mut self) -> Result<()> {
		let Some((id, path, writer, _)) = self.writer.take() else {
			return Ok(());
		};
		let opts = Arc::clone(&self.tree.core.inner.opts);
		let written = writer.finish().and_then(|_| {
			crate::vfs::fsync_file(&path)?;
			let file: Arc<dyn File> = Arc::new(SysFile::open(&path)?);
			let size = file.size()?;
			Table::new(id, opts, file, size)
		});
		match written {
			Ok(table) => {
				self.tables.push((Arc::new(table), path));
				Ok(())
			}
			Err(e) => {
				let _ = std::fs::remove_file(&path);
				Err(e)
			}
		}
	}

	/// Adds the tables written to the bottom level, after the checks [`Tree::ingest`] names. Must run within a
	/// Tokio runtime, as the memtable flush it starts with schedules the cleanup of the log segments it made
	/// obsolete there.
	pub fn finish(mut self) -> Result<()> {
		self.finish_table()?;
		if self.tables.is_empty() {
			self.finished = true;
			return Ok(());
		}
		let core = &self.tree.core;
		let inner = &core.inner;
		if let Some(vlog) = &inner.vlog {
			vlog.sync()?;
		}
		fsync_directory(inner.opts.sstable_dir())?;
		// Whatever the memtables hold goes to tables first, so that the check below sees every key.
		if !inner.active_memtable.read()?.is_empty() {
			inner.rotate_memtable()?;
		}
		inner.flush_all_immutables_sync()?;
		let _writes = core.commit_pipeline.lock_writes();
		if inner.visible_seq_num.load(Ordering::Acquire) + 1 != self.seq {
			return Err(Error::Other("ingest: the tree was written to during the ingest".into()));
		}
		let mut manifest = inner.level_manifest.write()?;
		let (first, last) = (
			self.tables[0].0.meta.smallest_point.clone(),
			self.tables[self.tables.len() - 1].0.meta.largest_point.clone(),
		);
		let (Some(first), Some(last)) = (first, last) else {
			return Err(Error::Other("ingest: a written table has no key range".into()));
		};
		let cmp = Arc::clone(&inner.opts.comparator);
		let in_range = |key: &[u8]| {
			cmp.compare(key, &first.user_key) != CmpOrdering::Less
				&& cmp.compare(key, &last.user_key) != CmpOrdering::Greater
		};
		for (level, tables) in manifest.levels.get_levels().iter().enumerate() {
			for table in &tables.tables {
				let (Some(lo), Some(hi)) = (&table.meta.smallest_point, &table.meta.largest_point) else {
					continue;
				};
				if cmp.compare(&hi.user_key, &first.user_key) == CmpOrdering::Less
					|| cmp.compare(&lo.user_key, &last.user_key) == CmpOrdering::Greater
				{
					continue;
				}
				if level == usize::from(self.level) {
					return Err(Error::Other(format!(
						"ingest: table {} of the bottom level overlaps the ingested keys",
						table.id
					)));
				}
				let mut entries = table.iter(None)?;
				let mut valid = entries.seek_first()?;
				while valid {
					let key = entries.key().user_key();
					if in_range(key) && self.holds(key)? {
						return Err(Error::Other(format!(
							"ingest: key {key:?} is in the tree already"
						)));
					}
					valid = entries.next()?;
				}
			}
		}
		let mut changeset = ManifestChangeSet::default();
		changeset.new_tables =
			self.tables.iter().map(|(table, _)| (self.level, Arc::clone(table))).collect();
		let rollback = manifest.apply_changeset(&changeset)?;
		if let Err(e) = write_manifest_to_disk(&manifest) {
			manifest.revert_changeset(rollback);
			return Err(e);
		}
		core.commit_pipeline.set_seq_num(self.seq);
		self.finished = true;
		Ok(())
	}

	/// Whether one of the tables written holds `key`.
	fn holds(&self, key: &[u8]) -> Result<bool> {
		let cmp = &self.tree.core.inner.opts.comparator;
		let at = self.tables.partition_point(|(table, _)| {
			table
				.meta
				.largest_point
				.as_ref()
				.is_some_and(|hi| cmp.compare(&hi.user_key, key) == CmpOrdering::Less)
		});
		let Some((table, _)) = self.tables.get(at) else {
			return Ok(false);
		};
		let probe = InternalKey::new(key.to_vec(), INTERNAL_KEY_SEQ_NUM_MAX, InternalKeyKind::Set, 0);
		Ok(table.get(&probe)?.is_some())
	}
}

impl Drop for Ingest<'_> {
	fn drop(&mut self) {
		if self.finished {
			return;
		}
		if let Some((_, path, _, _)) = self.writer.take() {
			let _ = std::fs::remove_file(path);
		}
		for (_, path) in self.tables.drain(..) {
			let _ = std::fs::remove_file(path);
		}
	}
}
