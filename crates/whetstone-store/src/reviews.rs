//! Review sessions: which evaluation is reviewed and how, the invited raters (only a hash of each invite
//! token is kept), each rater's queue with the side shown as A per item, and every rating ever submitted,
//! the latest per rater and item marked current.

use crate::error::{Error, Result};
use crate::store::Store;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSession {
    pub id: i64,
    pub evaluation_id: i64,
    pub name: String,
    /// The sides compared, as evaluation side names (`base`, `tuned`, `compare`).
    pub baseline: String,
    pub candidate: String,
    /// The rubric as the API defines it.
    pub criteria: serde_json::Value,
    pub raters_per_item: u32,
    pub seed: u64,
    pub closed: bool,
    pub created_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewReviewSession {
    pub evaluation_id: i64,
    pub name: String,
    pub baseline: String,
    pub candidate: String,
    pub criteria: serde_json::Value,
    pub raters_per_item: u32,
    pub seed: u64,
}

/// A rater to add to a session of `items` items.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRater<'a> {
    pub session_id: i64,
    pub name: &'a str,
    pub kind: &'a str,
    pub token_sha256: &'a str,
    pub expires_in_s: Option<u64>,
    pub items: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rater {
    pub id: i64,
    pub session_id: i64,
    pub name: String,
    /// `human` or `machine`.
    pub kind: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Whether `expires_at` has passed, by the database's clock.
    pub expired: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub item: u32,
    /// Position in the rater's queue, from 1.
    pub queue: u32,
    /// True when this rater sees the candidate as A.
    pub swapped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredRating {
    pub id: i64,
    pub rater_id: i64,
    pub item: u32,
    /// As submitted, in the A/B terms the rater saw.
    pub rating: serde_json::Value,
    pub current: bool,
    pub created_at: String,
}

const SESSION_COLUMNS: &str =
    "id, evaluation_id, name, baseline, candidate, criteria, raters_per_item, seed, status, created_at, closed_at";
const RATER_COLUMNS: &str = "id, session_id, name, kind, expires_at, revoked_at, \
     (expires_at IS NOT NULL AND expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), created_at";
const RATING_COLUMNS: &str = "id, rater_id, item, rating, current, created_at";

/// A rating to record with [`Store::submit_ratings`].
pub struct NewRating<'a> {
    pub rater_id: i64,
    pub item: u32,
    pub rating: &'a serde_json::Value,
}

/// What became of one rating of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Stored as the rater's current rating of the item; `replaced` when it took an earlier one's place.
    Written { id: i64, replaced: bool },
    /// Not written: the rater was revoked (or removed) meanwhile.
    Revoked,
    /// Not written: the session was closed meanwhile.
    Closed,
    /// Not written: the item is not in the rater's queue.
    NotInQueue,
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<(ReviewSession, String)> {
    let status: String = row.get(8)?;
    Ok((
        ReviewSession {
            id: row.get(0)?,
            evaluation_id: row.get(1)?,
            name: row.get(2)?,
            baseline: row.get(3)?,
            candidate: row.get(4)?,
            criteria: serde_json::Value::Null,
            raters_per_item: row.get(6)?,
            // Stored as SQLite's signed integer; the bits are the seed.
            seed: row.get::<_, i64>(7)? as u64,
            closed: status == "closed",
            created_at: row.get(9)?,
            closed_at: row.get(10)?,
        },
        row.get(5)?,
    ))
}

fn rater_from_row(row: &Row<'_>) -> rusqlite::Result<Rater> {
    Ok(Rater {
        id: row.get(0)?,
        session_id: row.get(1)?,
        name: row.get(2)?,
        kind: row.get(3)?,
        expires_at: row.get(4)?,
        revoked_at: row.get(5)?,
        expired: row.get(6)?,
        created_at: row.get(7)?,
    })
}

fn rating_from_row(row: &Row<'_>) -> rusqlite::Result<(StoredRating, String)> {
    Ok((
        StoredRating {
            id: row.get(0)?,
            rater_id: row.get(1)?,
            item: row.get(2)?,
            rating: serde_json::Value::Null,
            current: row.get(4)?,
            created_at: row.get(5)?,
        },
        row.get(3)?,
    ))
}

fn finish_rating((mut r, text): (StoredRating, String)) -> Result<StoredRating> {
    r.rating = serde_json::from_str(&text).map_err(|e| Error::Corrupt { what: "review rating", id: r.id, reason: e.to_string() })?;
    Ok(r)
}

impl Store {
    pub fn insert_review_session(&self, new: &NewReviewSession) -> Result<ReviewSession> {
        self.get_evaluation(new.evaluation_id)?;
        let criteria = serde_json::to_string(&new.criteria).map_err(|e| Error::Invalid { what: "review criteria", reason: e.to_string() })?;
        self.conn.execute(
            "INSERT INTO review_sessions (evaluation_id, name, baseline, candidate, criteria, raters_per_item, seed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![new.evaluation_id, new.name, new.baseline, new.candidate, criteria, new.raters_per_item, new.seed as i64],
        )?;
        self.get_review_session(self.conn.last_insert_rowid())
    }

    pub fn get_review_session(&self, id: i64) -> Result<ReviewSession> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM review_sessions WHERE id = ?1");
        let raw = self.conn.prepare_cached(&sql)?.query_row([id], session_from_row).optional()?.ok_or(Error::NotFound { what: "review session", id })?;
        finish_session(raw)
    }

    pub fn list_review_sessions(&self) -> Result<Vec<ReviewSession>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM review_sessions ORDER BY id DESC");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map([], session_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_session).collect()
    }

    /// Closes an open session; closing a closed one changes nothing.
    pub fn close_review_session(&self, id: i64) -> Result<ReviewSession> {
        let sql = format!("UPDATE review_sessions SET status = 'closed', closed_at = {NOW} WHERE id = ?1 AND status = 'open'");
        self.conn.execute(&sql, [id])?;
        self.get_review_session(id)
    }

    /// Adds a rater and their queue in one transaction. `assign` receives the new rater's id and, for every
    /// item of the session (1..=items), how many raters it is already assigned to, and returns the rater's
    /// queue; the counts are read inside the transaction, so two invitations at once cannot both take the
    /// last free place on an item.
    pub fn insert_rater<E: From<Error>>(
        &mut self,
        new: &NewRater<'_>,
        assign: impl FnOnce(i64, &[u32]) -> std::result::Result<Vec<Assignment>, E>,
    ) -> std::result::Result<Rater, E> {
        let NewRater { session_id, name, kind, token_sha256, expires_in_s, items } = *new;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Error::from)?;
        let expires = expires_in_s.map(|s| format!("+{s} seconds"));
        tx.execute(
            "INSERT INTO review_raters (session_id, name, kind, token_sha256, expires_at)
             VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5) END)",
            params![session_id, name, kind, token_sha256, expires],
        )
        .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => Error::Invalid {
                what: "rater",
                reason: format!("session {session_id} already has a rater named `{name}`; choose another name"),
            },
            _ => Error::from(e),
        })?;
        let rater_id = tx.last_insert_rowid();
        let mut counts = vec![0u32; items as usize];
        {
            let mut stmt = tx
                .prepare(
                    "SELECT a.item, COUNT(*) FROM review_assignments a JOIN review_raters r ON r.id = a.rater_id
                     WHERE r.session_id = ?1 GROUP BY a.item",
                )
                .map_err(Error::from)?;
            let rows = stmt
                .query_map([session_id], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)))
                .map_err(Error::from)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::from)?;
            for (item, n) in rows {
                if let Some(c) = counts.get_mut(item as usize - 1) {
                    *c = n;
                }
            }
        }
        for a in assign(rater_id, &counts)? {
            tx.execute(
                "INSERT INTO review_assignments (rater_id, item, queue, swapped) VALUES (?1, ?2, ?3, ?4)",
                params![rater_id, a.item, a.queue, a.swapped],
            )
            .map_err(Error::from)?;
        }
        tx.commit().map_err(Error::from)?;
        Ok(self.get_rater(rater_id)?)
    }

    pub fn get_rater(&self, id: i64) -> Result<Rater> {
        let sql = format!("SELECT {RATER_COLUMNS} FROM review_raters WHERE id = ?1");
        self.conn.query_row(&sql, [id], rater_from_row).optional()?.ok_or(Error::NotFound { what: "rater", id })
    }

    /// The rater whose invite token hashes to `token_sha256`, if any (revoked and expired ones included).
    pub fn rater_by_token(&self, token_sha256: &str) -> Result<Option<Rater>> {
        let sql = format!("SELECT {RATER_COLUMNS} FROM review_raters WHERE token_sha256 = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([token_sha256], rater_from_row).optional()?)
    }

    pub fn list_raters(&self, session_id: i64) -> Result<Vec<Rater>> {
        let sql = format!("SELECT {RATER_COLUMNS} FROM review_raters WHERE session_id = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([session_id], rater_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Revokes a rater's token. The items they had not rated leave their queue, so that a rater invited
    /// later can take them; what they rated stays.
    pub fn revoke_rater(&mut self, id: i64) -> Result<Rater> {
        self.get_rater(id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sql = format!("UPDATE review_raters SET revoked_at = COALESCE(revoked_at, {NOW}) WHERE id = ?1");
        tx.execute(&sql, [id])?;
        tx.execute(
            "DELETE FROM review_assignments WHERE rater_id = ?1
             AND item NOT IN (SELECT item FROM review_ratings WHERE rater_id = ?1)",
            [id],
        )?;
        tx.commit()?;
        self.get_rater(id)
    }

    /// A rater's queue in the order they see it.
    pub fn assignments(&self, rater_id: i64) -> Result<Vec<Assignment>> {
        let mut stmt = self.conn.prepare_cached("SELECT item, queue, swapped FROM review_assignments WHERE rater_id = ?1 ORDER BY queue")?;
        let rows = stmt
            .query_map([rater_id], |r| Ok(Assignment { item: r.get(0)?, queue: r.get(1)?, swapped: r.get(2)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records a rating as the rater's current one for the item; an earlier one stays as history.
    pub fn submit_rating(&mut self, rater_id: i64, item: u32, rating: &serde_json::Value) -> Result<(StoredRating, bool)> {
        let text = serde_json::to_string(rating).map_err(|e| Error::Invalid { what: "review rating", reason: e.to_string() })?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let replaced = tx.execute("UPDATE review_ratings SET current = 0 WHERE rater_id = ?1 AND item = ?2 AND current = 1", params![rater_id, item])?;
        tx.execute("INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (?1, ?2, ?3, 1)", params![rater_id, item, text])?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok((self.get_rating(id)?, replaced > 0))
    }

    /// Records several raters' ratings in one transaction, so that one sync to disk covers them all. Each
    /// is checked again inside it (the rater still invited, the session open, the item in their queue),
    /// since the rater may have been revoked or the session closed since they were first checked; a rating
    /// that fails is not written and the others are.
    pub fn submit_ratings(&mut self, ratings: &[NewRating<'_>]) -> Result<Vec<Submitted>> {
        let texts = ratings
            .iter()
            .map(|r| serde_json::to_string(r.rating).map_err(|e| Error::Invalid { what: "review rating", reason: e.to_string() }))
            .collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut written = Vec::with_capacity(ratings.len());
        for (r, text) in ratings.iter().zip(&texts) {
            let state: Option<(bool, String, bool)> = tx
                .query_row(
                    "SELECT r.revoked_at IS NOT NULL, s.status,
                            EXISTS (SELECT 1 FROM review_assignments a WHERE a.rater_id = r.id AND a.item = ?2)
                     FROM review_raters r JOIN review_sessions s ON s.id = r.session_id WHERE r.id = ?1",
                    params![r.rater_id, r.item],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let outcome = match state {
                None | Some((true, _, _)) => Submitted::Revoked,
                Some((_, status, _)) if status == "closed" => Submitted::Closed,
                Some((_, _, false)) => Submitted::NotInQueue,
                Some(_) => {
                    let replaced = tx.execute(
                        "UPDATE review_ratings SET current = 0 WHERE rater_id = ?1 AND item = ?2 AND current = 1",
                        params![r.rater_id, r.item],
                    )?;
                    tx.execute("INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (?1, ?2, ?3, 1)", params![r.rater_id, r.item, text])?;
                    Submitted::Written { id: tx.last_insert_rowid(), replaced: replaced > 0 }
                }
            };
            written.push(outcome);
        }
        tx.commit()?;
        Ok(written)
    }

    pub fn get_rating(&self, id: i64) -> Result<StoredRating> {
        let sql = format!("SELECT {RATING_COLUMNS} FROM review_ratings WHERE id = ?1");
        finish_rating(self.conn.query_row(&sql, [id], rating_from_row).optional()?.ok_or(Error::NotFound { what: "review rating", id })?)
    }

    /// The current rating of every rater of a session, by rater and then queue order.
    pub fn current_ratings(&self, session_id: i64) -> Result<Vec<StoredRating>> {
        let sql = "SELECT g.id, g.rater_id, g.item, g.rating, g.current, g.created_at FROM review_ratings g
                   JOIN review_raters r ON r.id = g.rater_id
                   JOIN review_assignments a ON a.rater_id = g.rater_id AND a.item = g.item
                   WHERE r.session_id = ?1 AND g.current = 1 ORDER BY g.rater_id, a.queue";
        let mut stmt = self.conn.prepare(sql)?;
        let raws = stmt.query_map([session_id], rating_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_rating).collect()
    }

    /// One rater's current ratings, in their queue's order. A rater's page reads this on every request, so
    /// it stays within the rater's own rows (the current-rating index) however large the session grows.
    pub fn current_ratings_of(&self, rater_id: i64) -> Result<Vec<StoredRating>> {
        let sql = "SELECT g.id, g.rater_id, g.item, g.rating, g.current, g.created_at FROM review_ratings g
                   JOIN review_assignments a ON a.rater_id = g.rater_id AND a.item = g.item
                   WHERE g.rater_id = ?1 AND g.current = 1 ORDER BY a.queue";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let raws = stmt.query_map([rater_id], rating_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_rating).collect()
    }

    /// The items a rater has a current rating of (the ratings themselves left unread).
    pub fn rated_items(&self, rater_id: i64) -> Result<Vec<u32>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT g.item FROM review_ratings g JOIN review_assignments a ON a.rater_id = g.rater_id AND a.item = g.item
             WHERE g.rater_id = ?1 AND g.current = 1",
        )?;
        let items = stmt.query_map([rater_id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<u32>>>()?;
        Ok(items)
    }

    /// A rater's current rating of an item, if they have one.
    pub fn current_rating(&self, rater_id: i64, item: u32) -> Result<Option<StoredRating>> {
        let sql = format!("SELECT {RATING_COLUMNS} FROM review_ratings WHERE rater_id = ?1 AND item = ?2 AND current = 1");
        let raw = self.conn.prepare_cached(&sql)?.query_row(params![rater_id, item], rating_from_row).optional()?;
        raw.map(finish_rating).transpose()
    }

    /// How many items of their queue a rater has a current rating of, and how many the queue holds.
    pub fn rater_counts(&self, rater_id: i64) -> Result<(u32, u32)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT (SELECT COUNT(*) FROM review_ratings g JOIN review_assignments a ON a.rater_id = g.rater_id AND a.item = g.item
                     WHERE g.rater_id = ?1 AND g.current = 1),
                    (SELECT COUNT(*) FROM review_assignments WHERE rater_id = ?1)",
        )?;
        Ok(stmt.query_row([rater_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Every rating a rater submitted for an item, oldest first.
    pub fn rating_history(&self, rater_id: i64, item: u32) -> Result<Vec<StoredRating>> {
        let sql = format!("SELECT {RATING_COLUMNS} FROM review_ratings WHERE rater_id = ?1 AND item = ?2 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map(params![rater_id, item], rating_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_rating).collect()
    }

    /// How many ratings were ever stored for a session (current and replaced), for checks that nothing was written.
    pub fn count_ratings(&self, session_id: i64) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM review_ratings g JOIN review_raters r ON r.id = g.rater_id WHERE r.session_id = ?1",
            [session_id],
            |r| r.get(0),
        )?)
    }
}

fn finish_session((mut s, criteria): (ReviewSession, String)) -> Result<ReviewSession> {
    s.criteria = serde_json::from_str(&criteria).map_err(|e| Error::Corrupt { what: "review session", id: s.id, reason: format!("criteria: {e}") })?;
    Ok(s)
}
