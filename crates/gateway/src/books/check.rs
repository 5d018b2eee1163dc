//! `conductor store check`: is a books file sound? Read-only: it reports, it never migrates
//! or repairs. Problems are what an operator must act on; facts are for the record.

use super::{db, in_file, migrations, rollup, BooksError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub latest_version: u32,
    pub integrity: String,
    pub decisions: u64,
    pub feedback: u64,
    /// Decisions not yet folded into the rollups (the server folds them when it opens).
    pub not_rolled_up: u64,
    pub problems: Vec<String>,
}

fn count(c: &Connection, sql: &str) -> Result<u64, BooksError> {
    c.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(db)
}

pub fn check(path: &Path) -> Result<Report, BooksError> {
    if !path.is_file() {
        return Err(BooksError::Db(format!("no books at {}", path.display())));
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| in_file(path, db(e)))?;
    let integrity: String =
        c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| in_file(path, db(e)))?;
    let mut problems = Vec::new();
    if integrity != "ok" {
        problems.push(format!("SQLite integrity check: {integrity}"));
    }
    let version = migrations::current(&c)?;
    let latest = migrations::latest();
    if version < latest {
        problems.push(format!(
            "schema at version {version}, this conductor's is {latest}: run `conductor store migrate` (or start the server)"
        ));
    } else if version > latest {
        problems.push(format!("schema at version {version} is newer than this conductor knows ({latest})"));
    }
    let report = |decisions, feedback, not_rolled_up, problems| Report {
        schema_version: version,
        latest_version: latest,
        integrity: integrity.clone(),
        decisions,
        feedback,
        not_rolled_up,
        problems,
    };
    if version < latest {
        return Ok(report(0, 0, 0, problems));
    }
    let decisions = count(&c, "SELECT COUNT(*) FROM decisions")?;
    let feedback = count(&c, "SELECT COUNT(*) FROM feedback")?;
    let orphans = count(
        &c,
        "SELECT COUNT(*) FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.id = f.decision_id)",
    )?;
    if orphans > 0 {
        problems.push(format!("{orphans} feedback rows name no decision"));
    }
    let last: i64 = c
        .query_row("SELECT last_rowid FROM rollup_progress WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(db)?
        .unwrap_or(0);
    let folded: i64 =
        c.query_row("SELECT COUNT(*) FROM decisions WHERE rowid <= ?1", [last], |r| r.get(0)).map_err(db)?;
    let not_rolled_up = decisions - folded as u64;
    for grain in [rollup::MINUTE_MS, rollup::HOUR_MS] {
        let rolled: i64 = c
            .query_row("SELECT COALESCE(SUM(requests), 0) FROM rollups WHERE grain_ms = ?1", [grain], |r| r.get(0))
            .map_err(db)?;
        if rolled != folded {
            problems.push(format!(
                "rollups per {} count {rolled} requests, the books {folded}",
                if grain == rollup::HOUR_MS { "hour" } else { "minute" }
            ));
        }
    }
    Ok(report(decisions, feedback, not_rolled_up, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::tests::row;
    use crate::books::Books;

    #[tokio::test]
    async fn sound_books_pass_and_tampered_rollups_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let (books, writer) = Books::open(&path).unwrap();
        books.record(row("d1"));
        books.feedback("d1".into(), 1.0, "k".into()).await.unwrap();
        drop(books);
        writer.join();
        let r = check(&path).unwrap();
        assert!(r.problems.is_empty(), "{r:?}");
        assert_eq!((r.decisions, r.feedback, r.not_rolled_up, r.integrity.as_str()), (1, 1, 0, "ok"));
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE rollups SET requests = 5 WHERE grain_ms = 3600000", [])
            .unwrap();
        let r = check(&path).unwrap();
        assert_eq!(r.problems, ["rollups per hour count 5 requests, the books 1"]);
        assert!(check(&dir.path().join("none.sqlite")).is_err());
    }
}
