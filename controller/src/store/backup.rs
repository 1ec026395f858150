//! A whole store in one file (`berth-controller backup` and `restore`),
//! the same for both engines, so a backup of one restores into the other.
//!
//! The file is gzip of: the magic `BERTHBK1`; for each tree, `T` with its
//! name, its entries as `E` (key and value, each with a u32 length), and
//! `C` with the tree's entry count; `I` with the id generator's last
//! value; and `Z` with the SHA-256 of every byte before it. A restore
//! reads the whole file and checks it before it writes anything.

use std::io::{BufReader, BufWriter, Read, Write};

use sha2::{Digest, Sha256};

use super::kv::IVec;
use super::trees::Trees;
use super::{Store, StoreError};

const MAGIC: &[u8; 8] = b"BERTHBK1";

/// Entries written per transaction of a restore.
const BATCH: usize = super::kv::BATCH;

/// What a backup holds, or what a restore wrote.
#[derive(Debug, Default)]
pub struct Backup {
    /// Each tree's entries.
    pub trees: Vec<(String, u64)>,
    /// The SHA-256 of the content, hex.
    pub sha256: String,
}

/// Writes bytes and hashes them.
struct Hashing<W: Write> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hash.update(bytes);
        self.out.write_all(bytes).map_err(io)
    }

    fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(bytes.len()).map_err(|_| corrupt("an entry over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

fn io(err: std::io::Error) -> StoreError {
    StoreError::Database(format!("the backup file: {err}"))
}

fn corrupt(reason: &str) -> StoreError {
    StoreError::Refused(format!(
        "the backup file is damaged or not a berth backup ({reason}); nothing was restored"
    ))
}

impl Store {
    /// Writes every tree, as of one instant, to `out`.
    pub fn backup(&self, out: impl Write) -> Result<Backup, StoreError> {
        let trees = self.t()?;
        let all = trees.all();
        let list: Vec<&super::kv::Tree> = all.iter().map(|(_, tree)| *tree).collect();
        let gzip = flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
        let mut file = Hashing {
            out: gzip,
            hash: Sha256::new(),
        };
        file.put(MAGIC)?;
        let mut counts = vec![0u64; all.len()];
        let mut current: Option<usize> = None;
        let close = |file: &mut Hashing<_>, count: u64| -> Result<(), StoreError> {
            file.put(b"C")?;
            file.put(&count.to_be_bytes())
        };
        trees.db.read_consistent(&list, |index, key, value| {
            while current != Some(index) {
                if let Some(done) = current {
                    close(&mut file, counts[done])?;
                }
                let next = current.map_or(0, |at| at + 1);
                file.put(b"T")?;
                file.put_bytes(all[next].0.as_bytes())?;
                current = Some(next);
            }
            file.put(b"E")?;
            file.put_bytes(&key)?;
            file.put_bytes(&value)?;
            counts[index] += 1;
            Ok(())
        })?;
        // The trees after the last one that had entries.
        let mut next = current.map_or(0, |at| at + 1);
        if let Some(done) = current {
            close(&mut file, counts[done])?;
        }
        while next < all.len() {
            file.put(b"T")?;
            file.put_bytes(all[next].0.as_bytes())?;
            close(&mut file, 0)?;
            next += 1;
        }
        file.put(b"I")?;
        file.put(&trees.db.generate_id()?.to_be_bytes())?;
        file.put(b"Z")?;
        let digest = file.hash.finalize_reset();
        file.out.write_all(&digest).map_err(io)?;
        let mut writer = file.out.finish().map_err(io)?;
        writer.flush().map_err(io)?;
        Ok(Backup {
            trees: all
                .iter()
                .zip(counts)
                .map(|((name, _), count)| (name.to_string(), count))
                .collect(),
            sha256: hex::encode(digest),
        })
    }

    /// Checks the backup `open()` reads, then writes it into this store,
    /// which must hold nothing yet. `open` is called twice: once to check,
    /// once to write.
    pub fn restore<R: Read>(
        &self,
        open: impl Fn() -> std::io::Result<R>,
    ) -> Result<Backup, StoreError> {
        let trees = self.t()?;
        if let Some(name) = trees.holding_records()? {
            return Err(StoreError::Refused(format!(
                "the store to restore into already holds records (its `{name}` is not empty); restore into a new data directory's store or an empty database"
            )));
        }
        let checked = walk(open().map_err(io)?, &trees, None)?;
        let written = walk(open().map_err(io)?, &trees, Some(self))?;
        if written.trees != checked.trees {
            return Err(corrupt("it changed while it was restored"));
        }
        for (name, tree) in trees.all() {
            let expected = checked
                .trees
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c);
            if name != "meta" && tree.len()? as u64 != expected {
                return Err(StoreError::Database(format!(
                    "after the restore `{name}` holds {} entries where the backup has {expected}",
                    tree.len()?
                )));
            }
        }
        Ok(checked)
    }
}

/// Reads a backup; with `into`, writes its entries there as it goes.
fn walk(input: impl Read, trees: &Trees, into: Option<&Store>) -> Result<Backup, StoreError> {
    let mut input = BufReader::new(flate2::read::GzDecoder::new(input));
    let mut hash = Sha256::new();
    let mut take = |len: usize, hash: &mut Sha256| -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0u8; len];
        input
            .read_exact(&mut bytes)
            .map_err(|_| corrupt("it ends too early"))?;
        hash.update(&bytes);
        Ok(bytes)
    };
    if take(8, &mut hash)? != MAGIC {
        return Err(corrupt("it does not start with BERTHBK1"));
    }
    let all = trees.all();
    let mut backup = Backup::default();
    let mut tree: Option<(String, &super::kv::Tree, u64)> = None;
    let mut batch: Vec<(IVec, IVec)> = Vec::new();
    loop {
        let kind = take(1, &mut hash)?[0];
        let length =
            |bytes: Vec<u8>| u32::from_be_bytes(bytes.try_into().unwrap_or_default()) as usize;
        match kind {
            b'T' => {
                let len = length(take(4, &mut hash)?);
                let name = String::from_utf8(take(len.min(64), &mut hash)?)
                    .map_err(|_| corrupt("a tree name is not text"))?;
                let Some((_, target)) = all.iter().find(|(known, _)| *known == name) else {
                    return Err(corrupt(&format!(
                        "it has a tree `{name}` this build does not know"
                    )));
                };
                tree = Some((name, target, 0));
            }
            b'E' => {
                let Some((_, target, count)) = tree.as_mut() else {
                    return Err(corrupt("an entry outside a tree"));
                };
                let key_len = length(take(4, &mut hash)?);
                let key = take(key_len, &mut hash)?;
                let value_len = length(take(4, &mut hash)?);
                let value = take(value_len, &mut hash)?;
                *count += 1;
                if into.is_some() {
                    batch.push((key.into(), value.into()));
                    if batch.len() == BATCH {
                        target.insert_all(&mut batch)?;
                    }
                }
            }
            b'C' => {
                let Some((name, target, count)) = tree.take() else {
                    return Err(corrupt("a count outside a tree"));
                };
                let stated = u64::from_be_bytes(take(8, &mut hash)?.try_into().unwrap_or_default());
                if stated != count {
                    return Err(corrupt(&format!(
                        "`{name}` says {stated} entries and holds {count}"
                    )));
                }
                if into.is_some() {
                    target.insert_all(&mut batch)?;
                }
                backup.trees.push((name, count));
            }
            b'I' => {
                let last = u64::from_be_bytes(take(8, &mut hash)?.try_into().unwrap_or_default());
                if into.is_some() {
                    trees.db.advance_ids(last)?;
                }
            }
            b'Z' => {
                let digest = hash.finalize();
                let mut stated = [0u8; 32];
                input
                    .read_exact(&mut stated)
                    .map_err(|_| corrupt("it ends too early"))?;
                if stated != digest.as_slice() {
                    return Err(corrupt("its checksum does not match"));
                }
                backup.sha256 = hex::encode(digest);
                return Ok(backup);
            }
            other => return Err(corrupt(&format!("an unknown frame {other:#04x}"))),
        }
    }
}
