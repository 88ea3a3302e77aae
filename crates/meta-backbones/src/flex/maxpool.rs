//! [`PoolKernels`] for flex: one pass per operation, parallel over `(n, c)` planes.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorMetadata};
use rayon::prelude::*;

use super::{Real, data, tensor};
use crate::maxpool::PoolKernels;

/// `[N·C, H, W]` of the unpooled tensor.
fn planes(x: &FlexTensor) -> [usize; 3] {
    let [n, c, h, w] = x.shape().dims();
    [n * c, h, w]
}

/// Offset in a `W`-wide plane of the maximum of window `(i, j)` (first one on ties; a NaN
/// wins, so that it propagates as through any max).
#[inline]
fn argmax<T: Real>(plane: &[T], w: usize, i: usize, j: usize) -> usize {
    let top = 2 * i * w + 2 * j;
    let mut best = top;
    for k in [top + 1, top + w, top + w + 1] {
        let v = plane[k];
        if v > plane[best] || v.partial_cmp(&v).is_none() {
            best = k;
        }
    }
    best
}

/// `out[i, j] = values[argmax of window (i, j) of plane]` for one `W`-wide plane (`values` is
/// `plane` itself when pooling). Not inlined, so that profiles name it.
#[inline(never)]
fn gather_plane<T: Real>(plane: &[T], values: &[T], w: usize, out: &mut [T]) {
    let w2 = w / 2;
    for (i, row) in out.chunks_mut(w2).enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            *o = values[argmax(plane, w, i, j)];
        }
    }
}

/// `dx[argmax of window (i, j)] = dy[i, j]` for one plane. Not inlined, so that profiles name
/// it.
#[inline(never)]
fn scatter_plane<T: Real>(plane: &[T], dy: &[T], w: usize, dx: &mut [T]) {
    let w2 = w / 2;
    for (i, row) in dy.chunks(w2).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            dx[argmax(plane, w, i, j)] = v;
        }
    }
}

fn pool<T: Real>(x: &FlexTensor) -> FlexTensor {
    let [nc, h, w] = planes(x);
    let (h2, w2) = (h / 2, w / 2);
    let xs = data::<T>(x);
    let mut y = vec![T::default(); nc * h2 * w2];
    if h2 * w2 > 0 {
        y.par_chunks_mut(h2 * w2)
            .zip(xs.par_chunks(h * w))
            .for_each(|(y, plane)| gather_plane(plane, plane, w, y));
    }
    let [n, c, _, _]: [usize; 4] = x.shape().dims();
    tensor(y, Shape::new([n, c, h2, w2]))
}

fn scatter<T: Real>(dy: &FlexTensor, x: &FlexTensor) -> FlexTensor {
    let [nc, h, w] = planes(x);
    let (h2, w2) = (h / 2, w / 2);
    let (dys, xs) = (data::<T>(dy), data::<T>(x));
    let mut dx = vec![T::default(); nc * h * w];
    if h2 * w2 > 0 {
        dx.par_chunks_mut(h * w)
            .zip(xs.par_chunks(h * w).zip(dys.par_chunks(h2 * w2)))
            .for_each(|(dx, (plane, dy))| scatter_plane(plane, dy, w, dx));
    }
    tensor(dx, x.shape())
}

fn gather<T: Real>(g: &FlexTensor, x: &FlexTensor) -> FlexTensor {
    let [nc, h, w] = planes(x);
    let (h2, w2) = (h / 2, w / 2);
    let (gs, xs) = (data::<T>(g), data::<T>(x));
    let mut y = vec![T::default(); nc * h2 * w2];
    if h2 * w2 > 0 {
        y.par_chunks_mut(h2 * w2)
            .zip(xs.par_chunks(h * w).zip(gs.par_chunks(h * w)))
            .for_each(|(y, (plane, g))| gather_plane(plane, g, w, y));
    }
    let [n, c, _, _]: [usize; 4] = x.shape().dims();
    tensor(y, Shape::new([n, c, h2, w2]))
}

impl PoolKernels for Flex {
    fn pool_max(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        match x.dtype() {
            DType::F64 => pool::<f64>(&x),
            _ => pool::<f32>(&x),
        }
    }

    fn pool_scatter(dy: FlexTensor, x: FlexTensor) -> FlexTensor {
        let (dy, x) = (dy.to_contiguous(), x.to_contiguous());
        match x.dtype() {
            DType::F64 => scatter::<f64>(&dy, &x),
            _ => scatter::<f32>(&dy, &x),
        }
    }

    fn pool_gather(g: FlexTensor, x: FlexTensor) -> FlexTensor {
        let (g, x) = (g.to_contiguous(), x.to_contiguous());
        match x.dtype() {
            DType::F64 => gather::<f64>(&g, &x),
            _ => gather::<f32>(&g, &x),
        }
    }
}
