//! Padding examples into rectangular batches.

use crate::error::Result;
use candle_core::{Device, Tensor};

/// A micro-batch: `[b, t]` token ids, attention mask (1 = real token) and loss mask (1 = trained).
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub loss_mask: Tensor,
    /// Real (non-padding) tokens in the batch.
    pub tokens: usize,
    /// Tokens that count towards the loss (each predicted from the one before).
    pub targets: usize,
}

/// Right-pads `(ids, trained)` rows to the longest row with `pad_id`.
pub fn collate(rows: &[(&[u32], &[bool])], pad_id: u32, device: &Device) -> Result<Batch> {
    let b = rows.len();
    let t = rows.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![pad_id; b * t];
    let mut att = vec![0u32; b * t];
    let mut lm = vec![0u32; b * t];
    let mut tokens = 0;
    let mut targets = 0;
    for (i, (row, mask)) in rows.iter().enumerate() {
        for (j, &id) in row.iter().enumerate() {
            ids[i * t + j] = id;
            att[i * t + j] = 1;
            // The first token has nothing before it to be predicted from.
            if j > 0 && mask.get(j).copied().unwrap_or(false) {
                lm[i * t + j] = 1;
                targets += 1;
            }
        }
        tokens += row.len();
    }
    Ok(Batch {
        input_ids: Tensor::from_vec(ids, (b, t), device)?,
        attention_mask: Tensor::from_vec(att, (b, t), device)?,
        loss_mask: Tensor::from_vec(lm, (b, t), device)?,
        tokens,
        targets,
    })
}
