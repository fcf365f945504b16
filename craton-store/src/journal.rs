//! The audit log's journal: every entry is copied, before its call returns, into a ring in a
//! file mapped shared (`<log>.journal`), and the background flusher writes entries to the log
//! file itself in batches. A store into a shared mapping is in the kernel's page cache at once,
//! so a process killed at any later instant loses no entry (the same promise a `write(2)` per
//! entry gives) while costing a copy instead of a system call. The next opening of the log
//! appends whatever the journal holds beyond the file's last entry.
//!
//! Layout: a 64-byte header (16 bytes of magic, then the offset of the oldest record that may
//! not be in the log file yet, u64 little-endian), then the ring: records of a u32
//! little-endian length and the entry's line, or a length of `u32::MAX` meaning "continue at
//! the start of the ring". Nothing in the journal is trusted: recovery takes a record only if
//! its line's own hash holds and it continues the file's chain (next sequence number, previous
//! hash), so stale, torn and forged records end the recovery rather than enter the log.

use craton_core::SharedFileMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The journal file's size: the header and the ring (several times what the flusher leaves
/// unwritten at most, which is about two batches of `BATCH_BYTES`).
pub(crate) const JOURNAL_BYTES: usize = 512 << 10;
const MAGIC: &[u8; 16] = b"craton-auditj-1\n";
const HEADER: usize = 64;
/// Where the header keeps the oldest record that may still be missing from the log file.
const START_AT: usize = 16;
const WRAP: u32 = u32::MAX;
/// A line longer than this is written directly rather than journaled.
const MAX_RECORD: usize = (JOURNAL_BYTES - HEADER) / 4;

/// The journal beside `log`.
pub(crate) fn path_for(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// An open, mapped journal, locked against other processes for as long as it lives.
pub(crate) struct Journal {
    map: SharedFileMap,
    /// Holds the lock (an exclusive `flock`) that keeps a second process's recovery out.
    _file: File,
    /// Where the next record goes.
    pos: usize,
    /// The oldest record whose entry may not be in the log file yet (`pos` when none).
    start: usize,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("pos", &self.pos)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the journal at `path` for a log whose every entry is in its file already
    /// (recovery has run), creating it (0640, its space reserved, so no store into it can meet
    /// a full disk) if it is missing or not a journal of this size.
    pub(crate) fn open(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(path)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another process holds the journal",
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        let reusable = file.metadata()?.len() == JOURNAL_BYTES as u64 && {
            let mut magic = [0u8; 16];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).is_ok()
                && &magic == MAGIC
        };
        if !reusable {
            // Real zeros rather than a hole: the file system reserves the space at this write
            // (or fails it), so no later store into the mapping can meet a full disk. A file
            // system too full for it gets its space back: the log itself still needs it. No
            // sync: the journal guards against a crash of the process, not of the machine.
            let fill = || -> std::io::Result<()> {
                file.set_len(0)?;
                let mut zeros = vec![0u8; JOURNAL_BYTES];
                zeros[..MAGIC.len()].copy_from_slice(MAGIC);
                (&file).write_all(&zeros)
            };
            if let Err(e) = fill() {
                let _ = std::fs::remove_file(path);
                let _ = file.set_len(0);
                return Err(e);
            }
        }
        // The file is JOURNAL_BYTES long: checked above, or just written.
        let map = SharedFileMap::new(&file, JOURNAL_BYTES)?;
        let mut journal = Journal {
            map,
            _file: file,
            pos: HEADER,
            start: HEADER,
        };
        // Records left from before are all in the log file: starting over at the ring's start
        // leaves them behind as stale records, which recovery tells apart by sequence number.
        journal.set_start(HEADER);
        Ok(journal)
    }

    fn set_start(&mut self, at: usize) {
        self.start = at;
        self.map.write(START_AT, &(at as u64).to_le_bytes());
    }

    /// Copies `line` into the ring. False (nothing copied) when it would overwrite a record
    /// not yet in the log file, or is too long: the caller then writes the entry itself.
    pub(crate) fn append(&mut self, line: &[u8]) -> bool {
        if line.len() > MAX_RECORD {
            return false;
        }
        let need = 4 + line.len();
        let wraps = self.pos + need > JOURNAL_BYTES;
        let at = if wraps { HEADER } else { self.pos };
        // Unwritten records run from `start` to `pos`, around the ring's end if start > pos.
        // A record must end short of `start` (an end exactly at `start` would read as empty).
        let fits = if self.start == self.pos {
            true
        } else if self.start < self.pos {
            !wraps || at + need < self.start
        } else {
            !wraps && at + need < self.start
        };
        if !fits {
            return false;
        }
        let Ok(len) = u32::try_from(line.len()) else {
            return false;
        };
        self.map.write(at, &len.to_le_bytes());
        self.map.write(at + 4, line);
        if wraps && self.pos + 4 <= JOURNAL_BYTES {
            self.map.write(self.pos, &WRAP.to_le_bytes());
        }
        self.pos = at + need;
        true
    }

    /// Where the next record goes: a flush taking the queue notes it, and passes it to
    /// [`Journal::written_upto`] once the batch is in the log file.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Every record before `pos` (as returned by [`Journal::position`]) is in the log file.
    pub(crate) fn written_upto(&mut self, pos: usize) {
        self.set_start(pos);
    }
}

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Lines that continue the log file's chain, in order, ready to append.
    pub(crate) lines: Vec<u8>,
    /// How many entries `lines` holds.
    pub(crate) entries: u64,
    /// The last of them (sequence number and hash), if any.
    pub(crate) last: Option<(u64, [u8; 32])>,
    /// Why the journal could not be read at all (wrong size or magic), if so.
    pub(crate) unreadable: Option<String>,
}

/// A journaled line's sequence number, previous hash and own hash, if it is a whole line that
/// passes the verifier's own checks ([`crate::audit::check_line`]).
fn check_line(line: &[u8]) -> Option<(u64, [u8; 32], [u8; 32])> {
    let line = std::str::from_utf8(line.strip_suffix(b"\n")?).ok()?;
    let e = crate::audit::check_line(line).ok()?;
    Some((e.seq, e.prev, e.hash))
}

/// Reads the journal at `path` and collects the entries that continue a log whose next
/// entry is `next` chained to `prev`. `Ok(None)` when there is no journal, or when another
/// process holds it (that process owns the log and writes those entries itself).
pub(crate) fn recover(
    path: &Path,
    next: u64,
    prev: [u8; 32],
) -> std::io::Result<Option<Recovered>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        // Locking refused outright (a confinement profile without the lock permission): whether
        // another process holds the journal is unknown, so leave it, and say why.
        Err(std::fs::TryLockError::Error(e)) => {
            return Ok(Some(Recovered {
                unreadable: Some(format!("{}: cannot lock it: {e}", path.display())),
                ..Recovered::default()
            }));
        }
    }
    let mut bytes = Vec::with_capacity(JOURNAL_BYTES);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, JOURNAL_BYTES as u64 + 1),
        &mut bytes,
    )?;
    Ok(Some(collect(&bytes, next, prev)))
}

/// [`recover`] over the journal's bytes.
fn collect(bytes: &[u8], mut next: u64, mut prev: [u8; 32]) -> Recovered {
    let mut out = Recovered::default();
    if bytes.len() != JOURNAL_BYTES || !bytes.starts_with(MAGIC) {
        out.unreadable = Some(format!(
            "{} bytes{}, not a journal",
            bytes.len(),
            if bytes.starts_with(MAGIC) {
                ""
            } else {
                " without the journal's magic"
            }
        ));
        return out;
    }
    let word = |at: usize| -> Option<u64> {
        let b = bytes.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let Some(mut at) = word(START_AT)
        .and_then(|s| usize::try_from(s).ok())
        .filter(|s| (HEADER..JOURNAL_BYTES).contains(s))
    else {
        out.unreadable = Some("its start offset lies outside the ring".to_owned());
        return out;
    };
    // At most one trip around the ring.
    let mut budget = JOURNAL_BYTES - HEADER;
    loop {
        if at + 4 > JOURNAL_BYTES {
            at = HEADER;
        }
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if len == WRAP {
            let skipped = JOURNAL_BYTES - at;
            if skipped > budget {
                break;
            }
            budget -= skipped;
            at = HEADER;
            continue;
        }
        let len = len as usize;
        let need = 4 + len;
        if len == 0 || need > budget || at + need > JOURNAL_BYTES {
            break;
        }
        let Some((seq, line_prev, hash)) = check_line(&bytes[at + 4..at + need]) else {
            break;
        };
        if seq >= next {
            if seq != next || line_prev != prev {
                break;
            }
            out.lines.extend_from_slice(&bytes[at + 4..at + need]);
            out.entries += 1;
            out.last = Some((seq, hash));
            next += 1;
            prev = hash;
        }
        budget -= need;
        at += need;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chained line as the audit log writes it.
    fn line(seq: u64, prev: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
        let mut out = Vec::new();
        let mut f = crate::audit::Fields::default();
        f.put("seq", crate::audit::Field::U64(seq));
        f.put("event", crate::audit::Field::Static("test"));
        let h = crate::audit::chain_line(f, prev, &mut out);
        (out, h)
    }

    /// A journal's path in a fresh directory, removed with everything in it when the test
    /// is done with it.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for Scratch {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("craton-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir.join("audit.log.journal"))
    }

    /// `n` chained lines from the genesis hash.
    fn chain(n: u64) -> Vec<(Vec<u8>, [u8; 32])> {
        let mut prev = [0u8; 32];
        (0..n)
            .map(|seq| {
                let (l, h) = line(seq, &prev);
                prev = h;
                (l, h)
            })
            .collect()
    }

    #[test]
    fn unwritten_records_are_recovered_in_order_and_written_ones_skipped() {
        let path = scratch("order");
        let lines = chain(6);
        let mut j = Journal::open(&path).unwrap();
        let mut marks = Vec::new();
        for (l, _) in &lines {
            assert!(j.append(l));
            marks.push(j.position());
        }
        // The first two reached the log file.
        j.written_upto(marks[1]);
        let r = recover_while_held(&path, 2, lines[1].1);
        assert_eq!(r.entries, 4);
        assert_eq!(r.last, Some((5, lines[5].1)));
        let want: Vec<u8> = lines[2..].iter().flat_map(|(l, _)| l.clone()).collect();
        assert_eq!(r.lines, want);
        // A log that already holds the first four: only the last two are new.
        let r = recover_while_held(&path, 4, lines[3].1);
        assert_eq!(r.entries, 2);
        // A log from another chain: nothing continues it.
        let r = recover_while_held(&path, 2, [7; 32]);
        assert_eq!(r.entries, 0);
        drop(j);
        // Reopened (as after recovery): nothing unwritten, the old records stale.
        let _j = Journal::open(&path).unwrap();
        let r = recover_while_held(&path, 6, lines[5].1);
        assert_eq!(r.entries, 0);
        assert!(r.unreadable.is_none());
    }

    /// Reads the journal's bytes directly: the test process holds its lock.
    fn recover_while_held(path: &Path, next: u64, prev: [u8; 32]) -> Recovered {
        collect(&std::fs::read(path).unwrap(), next, prev)
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_made_one() {
        let path = scratch("foreign");
        std::fs::write(&path, b"not a journal").unwrap();
        let mut j = Journal::open(&path).unwrap();
        assert!(j.append(&chain(1)[0].0));
        drop(j);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), JOURNAL_BYTES);
        assert_eq!(collect(&bytes, 0, [0; 32]).entries, 1);
    }

    #[test]
    fn a_second_process_sees_a_held_journal_as_not_its_own() {
        let path = scratch("held");
        let _j = Journal::open(&path).unwrap();
        // flock conflicts between open file descriptions even in one process.
        assert!(recover(&path, 0, [0; 32]).unwrap().is_none());
        let e = Journal::open(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        assert!(
            recover(&path.with_extension("absent"), 0, [0; 32])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_ring_wraps_without_overwriting_unwritten_records() {
        let path = scratch("wrap");
        let mut j = Journal::open(&path).unwrap();
        let mut hashes = vec![[0u8; 32]];
        // Each entry's position after it, for marking entries written.
        let mut marks = Vec::new();
        let mut written = 0usize;
        let mut wraps = 0;
        // Several trips around the ring, the log file trailing by up to 150 entries.
        for seq in 0..20_000u64 {
            let (l, h) = line(seq, hashes.last().unwrap());
            let before = j.position();
            assert!(
                j.append(&l),
                "entry {seq} refused with {} unwritten",
                marks.len() - written
            );
            if j.position() < before {
                wraps += 1;
            }
            hashes.push(h);
            marks.push(j.position());
            if marks.len() - written > 150 {
                written += 50;
                j.written_upto(marks[written - 1]);
            }
            if seq % 997 == 0 {
                let r = recover_while_held(&path, written as u64, hashes[written]);
                assert_eq!(r.entries, seq + 1 - written as u64, "at entry {seq}");
            }
        }
        assert!(wraps >= 2, "the ring went round {wraps} times");
    }

    #[test]
    fn torn_forged_and_foreign_journals_recover_nothing_and_say_why() {
        let path = scratch("bad");
        let lines = chain(3);
        let mut j = Journal::open(&path).unwrap();
        for (l, _) in &lines {
            assert!(j.append(l));
        }
        drop(j);
        let good = std::fs::read(&path).unwrap();
        assert_eq!(collect(&good, 0, [0; 32]).entries, 3);
        // A record cut short by a crash mid-copy: the ones before it still count.
        let mut torn = good.clone();
        let second = HEADER + 4 + lines[0].0.len();
        let cut = second + 4 + lines[1].0.len() / 2;
        torn[cut..second + 4 + lines[1].0.len()].fill(0);
        assert_eq!(collect(&torn, 0, [0; 32]).entries, 1);
        // An edited entry fails its hash: recovery stops before it.
        let mut edited = good.clone();
        let at = second + 4 + 2;
        edited[at] ^= 1;
        assert_eq!(collect(&edited, 0, [0; 32]).entries, 1);
        // Not a journal at all.
        let r = collect(b"hello", 0, [0; 32]);
        assert_eq!(r.entries, 0);
        assert!(r.unreadable.unwrap().contains("magic"));
        let mut bad_start = good;
        bad_start[START_AT..START_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            collect(&bad_start, 0, [0; 32])
                .unreadable
                .unwrap()
                .contains("start")
        );
    }
}
