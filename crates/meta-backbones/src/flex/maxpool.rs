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

/// `y` beats `x` for the maximum: greater, or NaN (so that a NaN propagates as through any
/// max); on ties the earlier value stays.
#[inline(always)]
fn beats<T: Real>(y: T, x: T) -> bool {
    #[allow(clippy::eq_op)] // `y != y`: y is NaN
    let nan = y != y;
    (y > x) | nan
}

/// Which of a window's four values `[top-left, top-right, bottom-left, bottom-right]` is its
/// maximum (first on ties). Written with selects, not branches or indexing, which random data
/// and store forwarding make slow.
#[inline(always)]
fn pick<T: Real>(p: [T; 4]) -> usize {
    let (top, bottom) = (beats(p[1], p[0]), beats(p[3], p[2]));
    let m01 = if top { p[1] } else { p[0] };
    let m23 = if bottom { p[3] } else { p[2] };
    if beats(m23, m01) {
        2 + bottom as usize
    } else {
        top as usize
    }
}

/// `v` at the position of `p`'s maximum ([`pick`]), by selects.
#[inline(always)]
fn choose<T: Real>(p: [T; 4], v: [T; 4]) -> T {
    let (top, bottom) = (beats(p[1], p[0]), beats(p[3], p[2]));
    let (m01, v01) = if top { (p[1], v[1]) } else { (p[0], v[0]) };
    let (m23, v23) = if bottom { (p[3], v[3]) } else { (p[2], v[2]) };
    if beats(m23, m01) { v23 } else { v01 }
}

/// Window `j` of the row pair `(r0, r1)`.
#[inline(always)]
fn window<T: Real>(r0: &[T], r1: &[T], j: usize) -> [T; 4] {
    [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]]
}

/// Rows `2i` and `2i + 1` of a `W`-wide plane.
#[inline(always)]
fn rows<T>(plane: &[T], w: usize, i: usize) -> (&[T], &[T]) {
    let pair = &plane[2 * i * w..(2 * i + 2) * w];
    pair.split_at(w)
}

/// `out[i, j] = values[argmax of window (i, j) of plane]` for one `W`-wide plane (`values` is
/// `plane` itself when pooling). Not inlined, so that profiles name it.
#[inline(never)]
fn gather_plane<T: Real>(plane: &[T], values: &[T], w: usize, out: &mut [T]) {
    let w2 = w / 2;
    for (i, out) in out.chunks_exact_mut(w2).enumerate() {
        let ((p0, p1), (v0, v1)) = (rows(plane, w, i), rows(values, w, i));
        for (j, o) in out.iter_mut().enumerate() {
            *o = choose(window(p0, p1, j), window(v0, v1, j));
        }
    }
}

/// `dx[argmax of window (i, j)] = dy[i, j]` for one plane (`dx` zeroed by the caller). Not
/// inlined, so that profiles name it.
#[inline(never)]
fn scatter_plane<T: Real>(plane: &[T], dy: &[T], w: usize, dx: &mut [T]) {
    let w2 = w / 2;
    for (i, dy) in dy.chunks_exact(w2).enumerate() {
        let (p0, p1) = rows(plane, w, i);
        let pair = &mut dx[2 * i * w..(2 * i + 2) * w];
        for (j, &v) in dy.iter().enumerate() {
            let k = pick(window(p0, p1, j));
            pair[(k >> 1) * w + 2 * j + (k & 1)] = v;
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
    /// The pooled input: the kernels find each window's maximum again, in the same pass.
    type Argmax = FlexTensor;

    fn pool_max_argmax(x: FlexTensor) -> (FlexTensor, FlexTensor) {
        (Self::pool_max(x.clone()), x)
    }

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
