//! Channels a `410 Gone` switched off.

use rusqlite::{TransactionBehavior, params};

use super::{Result, Sqlite, StoreError};
use crate::clock::UnixMs;
use crate::outbox::{ChannelId, DisabledChannel};

impl Sqlite {
    /// A `410 Gone`: the channel is disabled and its pending rows fail (with `reason`), in one
    /// transaction. New rows for it are inserted as failed until [`Sqlite::enable_channel`].
    /// Rows in flight finish normally. Returns how many pending rows were failed.
    pub fn disable_channel(
        &mut self,
        channel_id: &ChannelId,
        reason: &str,
        now: UnixMs,
    ) -> Result<usize> {
        let channel_id = channel_id.to_string();
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT INTO channels (channel_id, disabled_at, disabled_reason) VALUES (?1, ?2, ?3) \
             ON CONFLICT (channel_id) DO UPDATE SET disabled_at = ?2, disabled_reason = ?3",
            params![channel_id, now, reason],
        )
        .map_err(err)?;
        let n = tx
            .execute(
                "UPDATE outbox SET state = 'failed', last_error = ?2 \
                 WHERE channel_id = ?1 AND state = 'pending'",
                params![channel_id, format!("channel disabled: {reason}")],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// Re-enables a disabled channel (its failed rows stay failed: resend them by hand).
    pub fn enable_channel(&self, channel_id: &ChannelId) -> Result<bool> {
        let channel_id = channel_id.to_string();
        self.update(
            "UPDATE channels SET disabled_at = NULL, disabled_reason = NULL \
             WHERE channel_id = ?1 AND disabled_at IS NOT NULL",
            [channel_id],
        )
    }

    pub fn disabled_channels(&self) -> Result<Vec<DisabledChannel>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT channel_id, disabled_at, coalesce(disabled_reason, '') FROM channels \
                 WHERE disabled_at IS NOT NULL ORDER BY channel_id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            let channel: String = r.get(0)?;
            Ok(DisabledChannel {
                channel_id: channel
                    .parse()
                    .map_err(|e: crate::outbox::UnknownChannel| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            e.to_string().into(),
                        )
                    })?,
                disabled_at: r.get(1)?,
                reason: r.get(2)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }
}
