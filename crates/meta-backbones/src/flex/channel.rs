//! [`ChannelKernels`] for flex: one pass over the activations per operation. Reductions sum
//! each `(n, c)` row, then the rows in order of `n`, so results do not depend on the thread
//! count.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorMetadata};
use rayon::prelude::*;

use super::{Real, data, tensor};
use crate::channel::ChannelKernels;

/// `[N, C, L]` of a 3-d tensor.
fn dims3(t: &FlexTensor) -> [usize; 3] {
    t.shape().dims()
}

fn affine<T: Real>(x: &FlexTensor, s: &FlexTensor, t: &FlexTensor) -> FlexTensor {
    let [n, c, l] = dims3(x);
    let (xs, s, t) = (data::<T>(x), data::<T>(s), data::<T>(t));
    let mut y = vec![T::default(); n * c * l];
    y.par_chunks_mut(c * l)
        .zip(xs.par_chunks(c * l))
        .for_each(|(y, x)| affine_image(x, s, t, y, l));
    tensor(y, x.shape())
}

/// One image of [`affine`]. Not inlined, so that profiles name it.
#[inline(never)]
fn affine_image<T: Real>(x: &[T], s: &[T], t: &[T], y: &mut [T], l: usize) {
    for ((y, x), (&sc, &tc)) in y.chunks_mut(l).zip(x.chunks(l)).zip(s.iter().zip(t)) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * sc + tc);
    }
}

/// `Σ_{n,l} a·b` per channel, or `Σ_{n,l} a` without `b`.
fn reduce<T: Real>(a: &FlexTensor, b: Option<&FlexTensor>) -> FlexTensor {
    let [n, c, l] = dims3(a);
    let a = data::<T>(a);
    let b = b.map(data::<T>);
    let out: Vec<T> = (0..c)
        .into_par_iter()
        .map(|ch| reduce_channel(a, b, [n, c, l], ch))
        .collect();
    tensor(out, Shape::new([c]))
}

/// One channel of [`reduce`]: each `(n, ch)` row summed, then the rows in order. Not inlined,
/// so that profiles name it.
#[inline(never)]
fn reduce_channel<T: Real>(a: &[T], b: Option<&[T]>, [n, c, l]: [usize; 3], ch: usize) -> T {
    let mut total = T::default();
    for img in 0..n {
        let range = (img * c + ch) * l..(img * c + ch + 1) * l;
        let mut row = T::default();
        match b {
            Some(b) => a[range.clone()]
                .iter()
                .zip(&b[range])
                .for_each(|(&x, &y)| row += x * y),
            None => a[range].iter().for_each(|&x| row += x),
        }
        total += row;
    }
    total
}

fn broadcast<T: Real>(v: &FlexTensor, shape: Shape) -> FlexTensor {
    let [n, c, l] = shape.dims();
    let v = data::<T>(v);
    let mut y = vec![T::default(); n * c * l];
    y.par_chunks_mut(c * l).for_each(|y| {
        for (ch, row) in y.chunks_mut(l).enumerate() {
            row.fill(v[ch]);
        }
    });
    tensor(y, shape)
}

impl ChannelKernels for Flex {
    fn channel_affine(x: FlexTensor, s: FlexTensor, t: FlexTensor) -> FlexTensor {
        let (x, s, t) = (x.to_contiguous(), s.to_contiguous(), t.to_contiguous());
        match x.dtype() {
            DType::F64 => affine::<f64>(&x, &s, &t),
            _ => affine::<f32>(&x, &s, &t),
        }
    }

    fn channel_dot(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (a, b) = (a.to_contiguous(), b.to_contiguous());
        match a.dtype() {
            DType::F64 => reduce::<f64>(&a, Some(&b)),
            _ => reduce::<f32>(&a, Some(&b)),
        }
    }

    fn channel_sum(a: FlexTensor) -> FlexTensor {
        let a = a.to_contiguous();
        match a.dtype() {
            DType::F64 => reduce::<f64>(&a, None),
            _ => reduce::<f32>(&a, None),
        }
    }

    fn channel_broadcast(v: FlexTensor, shape: Shape) -> FlexTensor {
        let v = v.to_contiguous();
        match v.dtype() {
            DType::F64 => broadcast::<f64>(&v, shape),
            _ => broadcast::<f32>(&v, shape),
        }
    }
}
