//! What a batch of sequences carries from one forward call to the next: per layer, the
//! attention keys and values (in buffers with room to grow) or the DeltaNet convolution
//! history and recurrent state, plus which columns are real tokens and each row's next
//! position. Rows can be joined, admitted, padded, trimmed and dropped, which is what static
//! and continuous batching need.

use candle_core::{DType, Result, Tensor};

/// Keys and values seen so far by one full-attention layer, in buffers with room to grow
/// (`(B, kv_heads, capacity, head_dim)`; the first `len` positions are filled).
#[derive(Default)]
pub struct AttentionCache {
    pub(super) buffers: Option<(Tensor, Tensor)>,
    pub(super) len: usize,
}

impl AttentionCache {
    /// Moves every row's entries `extra` columns to the right (the new columns on the left are
    /// padding), keeping `room` free columns after them.
    pub(super) fn pad_left(&mut self, extra: usize, room: usize) -> Result<()> {
        let Some((k, v)) = self.buffers.take() else {
            return Ok(());
        };
        let (b, kvh, _, hd) = k.dims4()?;
        let capacity = self.len + extra + room;
        let shift = |old: &Tensor| -> Result<Tensor> {
            let fresh = Tensor::zeros((b, kvh, capacity, hd), old.dtype(), old.device())?;
            fresh.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, extra)?;
            Ok(fresh)
        };
        self.buffers = Some((shift(&k)?, shift(&v)?));
        self.len += extra;
        Ok(())
    }

    /// Drops the first `columns` columns of every row (padding for all of them).
    pub(super) fn trim_left(&mut self, columns: usize, room: usize) -> Result<()> {
        let Some((k, v)) = self.buffers.take() else {
            return Ok(());
        };
        let (b, kvh, _, hd) = k.dims4()?;
        let kept = self.len - columns;
        let cut = |old: &Tensor| -> Result<Tensor> {
            let fresh = Tensor::zeros((b, kvh, kept + room, hd), old.dtype(), old.device())?;
            fresh.slice_set(&old.narrow(2, columns, kept)?.contiguous()?, 2, 0)?;
            Ok(fresh)
        };
        self.buffers = Some((cut(&k)?, cut(&v)?));
        self.len = kept;
        Ok(())
    }

    /// Writes a one-row cache's entries into row `slot`, right-aligned at the current length
    /// (its entries must fit: `other.len ≤ self.len`).
    pub(super) fn place(&mut self, slot: usize, other: &AttentionCache) -> Result<()> {
        let (Some((k, v)), Some((ok, ov))) = (&self.buffers, &other.buffers) else {
            candle_core::bail!("placing into an empty attention cache");
        };
        let start = self.len - other.len;
        for (dst, src) in [(k, ok), (v, ov)] {
            dst.narrow(0, slot, 1)?.slice_set(
                &src.narrow(2, 0, other.len)?.contiguous()?,
                2,
                start,
            )?;
        }
        Ok(())
    }

    /// Writes the new keys and values after the old ones and returns views of all of them.
    /// The buffers grow geometrically (or to the capacity the [`Cache`] reserved), so a
    /// decoding step copies only its own token.
    pub(super) fn append(
        &mut self,
        k: &Tensor,
        v: &Tensor,
        reserve: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (b, kvh, t, hd) = k.dims4()?;
        let (kb, vb) = self.make_room((b, kvh, t, hd), k, reserve)?;
        kb.slice_set(k, 2, self.len)?;
        vb.slice_set(v, 2, self.len)?;
        self.len += t;
        self.filled()
    }

    /// A training pass's append: the new keys and values joined after the old ones as new
    /// tensors (differentiable in both, where [`Self::append`] writes into buffers), which the
    /// cache then holds exactly.
    pub(super) fn join(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = match &self.buffers {
            Some(_) => {
                let (old_k, old_v) = self.filled()?;
                (Tensor::cat(&[&old_k, k], 2)?, Tensor::cat(&[&old_v, v], 2)?)
            }
            None => (k.clone(), v.clone()),
        };
        self.len = k.dim(2)?;
        self.buffers = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    /// The key and value buffers, grown when `t` more columns do not fit (geometrically, or to
    /// the capacity the [`Cache`] reserved); `like` gives the dtype and device.
    pub(super) fn make_room(
        &mut self,
        (b, kvh, t, hd): (usize, usize, usize, usize),
        like: &Tensor,
        reserve: usize,
    ) -> Result<(Tensor, Tensor)> {
        let needed = self.len + t;
        let capacity = self
            .buffers
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if needed > capacity {
            let grown = needed.max(2 * capacity).max(reserve);
            let fresh = || Tensor::zeros((b, kvh, grown, hd), like.dtype(), like.device());
            let (nk, nv) = (fresh()?, fresh()?);
            if let Some((ok, ov)) = &self.buffers {
                nk.slice_set(&ok.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                nv.slice_set(&ov.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
            self.buffers = Some((nk, nv));
        }
        let (kb, vb) = self.buffers.as_ref().expect("buffers were just made");
        Ok((kb.clone(), vb.clone()))
    }

    /// Views of the filled columns of the key and value buffers.
    pub(super) fn filled(&self) -> Result<(Tensor, Tensor)> {
        let Some((kb, vb)) = &self.buffers else {
            candle_core::bail!("an empty attention cache has no keys");
        };
        Ok((kb.narrow(2, 0, self.len)?, vb.narrow(2, 0, self.len)?))
    }

    /// Appends another batch's rows (same length and capacity).
    pub(super) fn extend(&mut self, other: AttentionCache) -> Result<()> {
        if self.len != other.len {
            candle_core::bail!("attention caches of different lengths");
        }
        self.buffers = match (self.buffers.take(), other.buffers) {
            (Some((k, v)), Some((ok, ov))) => {
                Some((Tensor::cat(&[&k, &ok], 0)?, Tensor::cat(&[&v, &ov], 0)?))
            }
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Keeps only the batch rows in `rows`.
    pub(super) fn retain(&mut self, rows: &Tensor) -> Result<()> {
        if let Some((k, v)) = self.buffers.take() {
            self.buffers = Some((k.index_select(rows, 0)?, v.index_select(rows, 0)?));
        }
        Ok(())
    }
}

/// What one DeltaNet layer carries between calls.
#[derive(Default)]
pub struct DeltaNetCache {
    /// The last `kernel − 1` convolution inputs `(B, kernel − 1, channels)`.
    pub(super) conv: Option<Tensor>,
    /// The recurrent state `(B, value_heads, key_dim, value_dim)`, f32.
    pub(super) state: Option<Tensor>,
}

/// Two optional batch tensors stacked along the batch axis.
fn join(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(Tensor::cat(&[&a, &b], 0)?),
        (a, b) => a.or(b),
    })
}

impl DeltaNetCache {
    /// Writes a one-row cache's convolution history and state into row `slot`.
    pub(super) fn place(&mut self, slot: usize, other: &DeltaNetCache) -> Result<()> {
        for (dst, src) in [(&self.conv, &other.conv), (&self.state, &other.state)] {
            let (Some(dst), Some(src)) = (dst, src) else {
                candle_core::bail!("placing into an empty DeltaNet cache");
            };
            dst.slice_set(&src.contiguous()?, 0, slot)?;
        }
        Ok(())
    }

    /// Appends another batch's rows.
    pub(super) fn extend(&mut self, other: DeltaNetCache) -> Result<()> {
        self.conv = join(self.conv.take(), other.conv)?;
        self.state = join(self.state.take(), other.state)?;
        Ok(())
    }

    /// Keeps only the batch rows in `rows`.
    pub(super) fn retain(&mut self, rows: &Tensor) -> Result<()> {
        if let Some(conv) = self.conv.take() {
            self.conv = Some(conv.index_select(rows, 0)?);
        }
        if let Some(state) = self.state.take() {
            self.state = Some(state.index_select(rows, 0)?);
        }
        Ok(())
    }
}

/// One layer's cache.
pub enum LayerCache {
    /// A full-attention layer's keys and values.
    Attention(AttentionCache),
    /// A DeltaNet layer's convolution history and recurrent state.
    DeltaNet(DeltaNetCache),
}

impl LayerCache {
    /// What the layer carries, as tensors: the keys and values seen `(B, kv_heads, len,
    /// head_dim)`, or the convolution history and the recurrent state. Training's shared
    /// prefix passes them from the prefix to each continuation, and gradients back.
    pub(crate) fn tensors(&self) -> Result<Vec<Tensor>> {
        match self {
            LayerCache::Attention(c) => {
                let (k, v) = c.filled()?;
                Ok(vec![k, v])
            }
            LayerCache::DeltaNet(DeltaNetCache {
                conv: Some(conv),
                state: Some(state),
            }) => Ok(vec![conv.clone(), state.clone()]),
            LayerCache::DeltaNet(_) => {
                candle_core::bail!("an empty DeltaNet cache has no state")
            }
        }
    }

    /// A cache of the same kind holding `tensors` (as [`Self::tensors`] gives them).
    pub(crate) fn holding(&self, tensors: &[Tensor]) -> Result<LayerCache> {
        match (self, tensors) {
            (LayerCache::Attention(_), [k, v]) => Ok(LayerCache::Attention(AttentionCache {
                buffers: Some((k.clone(), v.clone())),
                len: k.dim(2)?,
            })),
            (LayerCache::DeltaNet(_), [conv, state]) => Ok(LayerCache::DeltaNet(DeltaNetCache {
                conv: Some(conv.clone()),
                state: Some(state.clone()),
            })),
            _ => candle_core::bail!("tensors for another kind of layer cache"),
        }
    }
}

/// Everything a batch of sequences carries from one forward call to the next.
pub struct Cache {
    pub(super) layers: Vec<LayerCache>,
    /// Tokens (padding included) seen so far.
    pub position: usize,
    /// Key/value capacity to allocate up front (tokens); the buffers grow past it if needed.
    pub(super) reserve: usize,
    /// Which of the tokens seen so far are real (1) or padding (0), `(B, position)` f32.
    pub(super) seen: Option<Tensor>,
    /// Real tokens seen so far per sequence: the next real token's position. Kept on the host
    /// so that positions never need a device round trip.
    pub(super) next_position: Vec<u32>,
    /// Bumped by every change a decoding graph cannot know about (any eager forward call, rows
    /// admitted, added, dropped or trimmed), so that a graph captured before is not replayed
    /// on a cache whose padding pattern it no longer matches ([`super::graph`]).
    pub(super) revision: u64,
}

/// A copy of an optional tensor in its own storage.
fn copied(t: &Option<Tensor>) -> Result<Option<Tensor>> {
    t.as_ref().map(Tensor::copy).transpose()
}

impl Cache {
    /// A copy of this cache in storage of its own (decoding writes into a cache's buffers in
    /// place, so a shallow clone would change with it): a prompt prefilled once can be
    /// admitted into several rows.
    pub fn duplicate(&self) -> Result<Cache> {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    LayerCache::Attention(a) => LayerCache::Attention(AttentionCache {
                        buffers: match &a.buffers {
                            Some((k, v)) => Some((k.copy()?, v.copy()?)),
                            None => None,
                        },
                        len: a.len,
                    }),
                    LayerCache::DeltaNet(d) => LayerCache::DeltaNet(DeltaNetCache {
                        conv: copied(&d.conv)?,
                        state: copied(&d.state)?,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cache {
            layers,
            position: self.position,
            reserve: self.reserve,
            seen: copied(&self.seen)?,
            next_position: self.next_position.clone(),
            revision: self.revision,
        })
    }

    /// Reserves key/value room for `tokens` positions (prompt + new tokens), so that the
    /// attention buffers are allocated once.
    pub fn reserve(&mut self, tokens: usize) {
        self.reserve = tokens;
    }

    /// Sequences in the batch (0 before the first call).
    pub fn batch_size(&self) -> usize {
        self.next_position.len()
    }

    /// Joins caches of batches that have seen the same number of positions (for example,
    /// groups of rows of one left-padded batch prefilled separately) into one batch.
    pub fn concat(parts: Vec<Cache>) -> Result<Cache> {
        let mut parts = parts.into_iter();
        let Some(mut whole) = parts.next() else {
            candle_core::bail!("no caches to join");
        };
        for part in parts {
            if part.position != whole.position || part.layers.len() != whole.layers.len() {
                candle_core::bail!("only caches at the same position can be joined");
            }
            for (w, p) in whole.layers.iter_mut().zip(part.layers) {
                match (w, p) {
                    (LayerCache::Attention(w), LayerCache::Attention(p)) => w.extend(p)?,
                    (LayerCache::DeltaNet(w), LayerCache::DeltaNet(p)) => w.extend(p)?,
                    _ => candle_core::bail!("the caches belong to different models"),
                }
            }
            whole.seen = join(whole.seen.take(), part.seen)?;
            whole.next_position.extend(part.next_position);
        }
        whole.revision += 1;
        Ok(whole)
    }

    /// Puts a one-sequence cache (a prompt prefilled alone) into batch row `slot`, replacing
    /// what was there: its entries end at the batch's current column, earlier columns of the
    /// row become padding. When the prompt is longer than the batch's history, every row is
    /// first shifted right (left padding added); `room` is the key/value space to keep free
    /// after the current column.
    pub fn admit(&mut self, slot: usize, one: &Cache, room: usize) -> Result<()> {
        self.revision += 1;
        if one.next_position.len() != 1 || slot >= self.next_position.len() {
            candle_core::bail!("admit takes a one-sequence cache and a row of this batch");
        }
        let (Some(seen), Some(one_seen)) = (self.seen.take(), one.seen.as_ref()) else {
            candle_core::bail!("admit needs caches that have seen tokens");
        };
        let (b, width) = seen.dims2()?;
        let needed = one_seen.dim(1)?;
        let mut seen = seen;
        if needed > width {
            let extra = needed - width;
            for layer in &mut self.layers {
                if let LayerCache::Attention(c) = layer {
                    c.pad_left(extra, room)?;
                }
            }
            let zeros = Tensor::zeros((b, extra), DType::F32, seen.device())?;
            seen = Tensor::cat(&[&zeros, &seen], 1)?;
            self.position += extra;
        }
        let width = seen.dim(1)?;
        for (mine, theirs) in self.layers.iter_mut().zip(&one.layers) {
            match (mine, theirs) {
                (LayerCache::Attention(m), LayerCache::Attention(t)) => m.place(slot, t)?,
                (LayerCache::DeltaNet(m), LayerCache::DeltaNet(t)) => m.place(slot, t)?,
                _ => candle_core::bail!("the caches belong to different models"),
            }
        }
        let row = Tensor::cat(
            &[
                &Tensor::zeros((1, width - needed), DType::F32, seen.device())?,
                one_seen,
            ],
            1,
        )?;
        seen.slice_set(&row, 0, slot)?;
        self.seen = Some(seen);
        self.next_position[slot] = one.next_position[0];
        Ok(())
    }

    /// Adds a row that is padding everywhere (zero state), for [`Cache::admit`] to fill.
    pub fn push_empty_row(&mut self) -> Result<()> {
        self.revision += 1;
        let zero_row = |t: &Tensor| -> Result<Tensor> {
            let mut dims = t.dims().to_vec();
            dims[0] = 1;
            Tensor::cat(&[t, &Tensor::zeros(dims, t.dtype(), t.device())?], 0)
        };
        for layer in &mut self.layers {
            match layer {
                LayerCache::Attention(c) => {
                    if let Some((k, v)) = c.buffers.take() {
                        c.buffers = Some((zero_row(&k)?, zero_row(&v)?));
                    }
                }
                LayerCache::DeltaNet(c) => {
                    c.conv = c.conv.take().map(|t| zero_row(&t)).transpose()?;
                    c.state = c.state.take().map(|t| zero_row(&t)).transpose()?;
                }
            }
        }
        self.seen = self.seen.take().map(|t| zero_row(&t)).transpose()?;
        self.next_position.push(0);
        Ok(())
    }

    /// Drops the leading columns that are padding in every row, when they are at least a
    /// quarter of the history (so a long-running batch does not attend over ever more
    /// padding); `room` is the key/value space to keep free. Returns the columns dropped.
    pub fn trim_padding(&mut self, room: usize) -> Result<usize> {
        self.revision += 1;
        let Some(seen) = self.seen.take() else {
            return Ok(0);
        };
        let width = seen.dim(1)?;
        let used: Vec<f32> = seen.max(0)?.to_vec1()?;
        let first = used.iter().position(|&u| u > 0.0).unwrap_or(width);
        if first == 0 || first * 4 < width {
            self.seen = Some(seen);
            return Ok(0);
        }
        for layer in &mut self.layers {
            if let LayerCache::Attention(c) = layer {
                c.trim_left(first, room)?;
            }
        }
        self.seen = Some(seen.narrow(1, first, width - first)?.contiguous()?);
        self.position -= first;
        Ok(first)
    }

    /// Keeps only the sequences at batch rows `rows` (in that order), dropping the others'
    /// state: a batch shrinks as its sequences finish.
    pub fn retain(&mut self, rows: &[usize]) -> Result<()> {
        self.revision += 1;
        if self.next_position.is_empty() {
            return Ok(());
        }
        if rows.iter().any(|&r| r >= self.next_position.len()) {
            candle_core::bail!("row out of range when shrinking the batch");
        }
        let device = match &self.seen {
            Some(seen) => seen.device().clone(),
            None => return Ok(()),
        };
        let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let index = Tensor::from_vec(index, rows.len(), &device)?;
        for layer in &mut self.layers {
            match layer {
                LayerCache::Attention(c) => c.retain(&index)?,
                LayerCache::DeltaNet(c) => c.retain(&index)?,
            }
        }
        if let Some(seen) = self.seen.take() {
            self.seen = Some(seen.index_select(&index, 0)?);
        }
        self.next_position = rows.iter().map(|&r| self.next_position[r]).collect();
        Ok(())
    }
}
