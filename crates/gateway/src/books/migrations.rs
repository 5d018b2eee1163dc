//! The books' schema as numbered migrations, applied in order when the books are opened and
//! recorded in `schema_migrations`. Every step is idempotent (`IF NOT EXISTS`, a column
//! added only when missing), so books written before this table existed — which already
//! have some of the steps — take them all once, safely. Books from a newer conductor (a
//! version this one does not know) are refused rather than misread.

use super::{add_column_if_missing, db, in_file, rollup, BooksError, FEEDBACK_ONE_PER_KEY, SCHEMA, VIEW_INDEXES};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    apply: fn(&Connection) -> Result<(), BooksError>,
}

fn batch(c: &Connection, sql: &str) -> Result<(), BooksError> {
    c.execute_batch(sql).map_err(db)
}

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "decisions and feedback", apply: |c| batch(c, SCHEMA) },
    Migration {
        version: 2,
        name: "one rating per decision and key",
        apply: |c| {
            let done = c
                .query_row(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'feedback_decision_key'",
                    [],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db)?
                .is_some();
            if done {
                Ok(())
            } else {
                batch(c, FEEDBACK_ONE_PER_KEY)
            }
        },
    },
    Migration { version: 3, name: "answer verification", apply: |c| add_column_if_missing(c, "verification", "TEXT") },
    Migration { version: 4, name: "time to first token", apply: |c| add_column_if_missing(c, "ttft_ms", "REAL") },
    Migration { version: 5, name: "dashboard indexes", apply: |c| batch(c, VIEW_INDEXES) },
    Migration { version: 6, name: "traffic rollups", apply: |c| batch(c, rollup::SCHEMA) },
];

/// The newest schema this build knows.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The schema version the books are at (0: none recorded).
pub fn current(c: &Connection) -> Result<u32, BooksError> {
    let exists = c
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", [], |_| Ok(()))
        .optional()
        .map_err(db)?
        .is_some();
    if !exists {
        return Ok(0);
    }
    c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(db)
}

/// The schema version of the books at `path`, read without changing them (0: no books yet).
pub fn version_of(path: &std::path::Path) -> Result<u32, BooksError> {
    if !path.is_file() {
        return Ok(0);
    }
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| in_file(path, db(e)))?;
    current(&c).map_err(|e| in_file(path, e))
}

/// Brings the books to [`latest`]; returns the names of the steps applied. Each step runs in
/// its own immediate transaction with its record, so two processes opening the same books
/// apply it once.
pub fn apply(c: &mut Connection) -> Result<Vec<&'static str>, BooksError> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
    )
    .map_err(db)?;
    let at = current(c)?;
    if at > latest() {
        return Err(BooksError::Db(format!(
            "these books are at schema version {at}, newer than this conductor knows (up to {}): run a newer conductor",
            latest()
        )));
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > at) {
        let txn = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        // Another process may have applied it while this one waited for the lock.
        if current(&txn)? >= m.version {
            continue;
        }
        (m.apply)(&txn)?;
        txn.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, crate::clock::now_ms()],
        )
        .map_err(db)?;
        txn.commit().map_err(db)?;
        applied.push(m.name);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_books_take_every_step_once_and_newer_books_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let mut c = Connection::open(&path).unwrap();
        assert_eq!(apply(&mut c).unwrap().len(), MIGRATIONS.len());
        assert_eq!(current(&c).unwrap(), latest());
        assert!(apply(&mut c).unwrap().is_empty(), "nothing twice");
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "numbered in order: {versions:?}");
        c.execute("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (99, 'future', 0)", []).unwrap();
        let e = apply(&mut c).unwrap_err().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
