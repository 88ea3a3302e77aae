//! [`ConvKernels`] for flex: im2col per image and one `gemm` product, images spread over
//! rayon's pool (its size is the thread count `metalearn --threads` sets).
//!
//! * forward: `y_n = W · cols(x_n)` (`[C_out, K] · [K, H'W']`, `K = C_in·kh·kw`), written
//!   straight into the `[N, C_out, H', W']` output;
//! * input gradient: `cols = Wᵀ · dy_n`, scattered back into the image (col2im);
//! * weight gradient: `Σ_n dy_n · cols(x_n)ᵀ`, summed over fixed chunks of images in a fixed
//!   order, so the result does not depend on the number of threads.
//!
//! The im2col buffer is rebuilt in the backward passes rather than kept: it is a cheap copy
//! next to the product and would be 9× the activation's memory.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorMetadata};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::{Real, data, tensor};
use crate::conv::{ConvGeom, ConvKernels};

/// Images whose weight-gradient contributions are summed by one task before the fixed-order
/// reduction of the chunks.
const DW_CHUNK: usize = 8;

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Dims {
    n: usize,
    c_in: usize,
    c_out: usize,
    in_hw: [usize; 2],
    kernel: [usize; 2],
    out_hw: [usize; 2],
    geom: ConvGeom,
}

impl Dims {
    fn new(
        n: usize,
        c_in: usize,
        c_out: usize,
        in_hw: [usize; 2],
        kernel: [usize; 2],
        geom: ConvGeom,
    ) -> Self {
        let out_hw = geom.output_hw(in_hw, kernel);
        Self {
            n,
            c_in,
            c_out,
            in_hw,
            kernel,
            out_hw,
            geom,
        }
    }
    /// Rows of the im2col matrix, `C_in·kh·kw`.
    fn k(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }
    fn in_len(&self) -> usize {
        self.c_in * self.in_hw[0] * self.in_hw[1]
    }
    fn out_plane(&self) -> usize {
        self.out_hw[0] * self.out_hw[1]
    }
    /// For kernel offset `j` along dimension `d`: the output positions whose input position
    /// `o·s + j − p` lies inside the image.
    fn valid(&self, d: usize, j: usize) -> std::ops::Range<usize> {
        let (s, p, size, out) = (
            self.geom.stride[d] as isize,
            self.geom.padding[d] as isize,
            self.in_hw[d] as isize,
            self.out_hw[d] as isize,
        );
        let j = j as isize;
        let lo = (p - j).max(0).div_euclid(s) + isize::from((p - j).max(0) % s != 0);
        let hi = ((size + p - j + s - 1).div_euclid(s)).clamp(0, out);
        (lo.min(hi) as usize)..(hi as usize)
    }
}

/// `cols[(c, i, j), (oh, ow)] = x[c, oh·s + i − p, ow·s + j − p]` (zero outside the image).
fn im2col<T: Real>(x: &[T], cols: &mut [T], d: &Dims) {
    let ([h, w], [kh, kw], [ho, wo]) = (d.in_hw, d.kernel, d.out_hw);
    let ([sh, sw], [ph, pw]) = (d.geom.stride, d.geom.padding);
    let plane = ho * wo;
    for c in 0..d.c_in {
        let img = &x[c * h * w..(c + 1) * h * w];
        for i in 0..kh {
            let rows = d.valid(0, i);
            for j in 0..kw {
                let cs = d.valid(1, j);
                let row = &mut cols[((c * kh + i) * kw + j) * plane..][..plane];
                for oh in 0..ho {
                    let dst = &mut row[oh * wo..(oh + 1) * wo];
                    if !rows.contains(&oh) {
                        dst.fill(T::default());
                        continue;
                    }
                    if cs.is_empty() {
                        dst.fill(T::default());
                        continue;
                    }
                    let src = &img[(oh * sh + i - ph) * w..][..w];
                    dst[..cs.start].fill(T::default());
                    dst[cs.end..].fill(T::default());
                    let first = cs.start * sw + j - pw;
                    if sw == 1 {
                        dst[cs.clone()].copy_from_slice(&src[first..first + cs.len()]);
                    } else {
                        for (k, o) in cs.clone().enumerate() {
                            dst[o] = src[first + k * sw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `x[c, ih, iw] += cols[(c, i, j), (oh, ow)]`; `x` starts zeroed.
fn col2im<T: Real>(cols: &[T], x: &mut [T], d: &Dims) {
    let ([h, w], [kh, kw], [ho, wo]) = (d.in_hw, d.kernel, d.out_hw);
    let ([sh, sw], [ph, pw]) = (d.geom.stride, d.geom.padding);
    let plane = ho * wo;
    x.fill(T::default());
    for c in 0..d.c_in {
        let img = &mut x[c * h * w..(c + 1) * h * w];
        for i in 0..kh {
            let rows = d.valid(0, i);
            for j in 0..kw {
                let cs = d.valid(1, j);
                if cs.is_empty() {
                    continue;
                }
                let row = &cols[((c * kh + i) * kw + j) * plane..][..plane];
                for oh in rows.clone() {
                    let src = &row[oh * wo..(oh + 1) * wo];
                    let dst = &mut img[(oh * sh + i - ph) * w..][..w];
                    let first = cs.start * sw + j - pw;
                    for (k, o) in cs.clone().enumerate() {
                        dst[first + k * sw] += src[o];
                    }
                }
            }
        }
    }
}

/// `dst (m×n) = lhs (m×k) · rhs (k×n)` (or `+=` with `accumulate`), each operand given by its
/// row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul<T: Real>(
    [m, n, k]: [usize; 3],
    dst: &mut [T],
    [dst_rs, dst_cs]: [usize; 2],
    accumulate: bool,
    lhs: &[T],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[T],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r.max(1) - 1) * rs + (c.max(1) - 1) * cs;
    assert!(
        last(dst_rs, dst_cs, m, n) < dst.len().max(1)
            && last(lhs_rs, lhs_cs, m, k) < lhs.len().max(1)
            && last(rhs_rs, rhs_cs, k, n) < rhs.len().max(1),
        "matmul operands out of bounds"
    );
    // SAFETY: the three operands are valid slices covering every index the strides reach
    // (checked above) and `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

fn forward<T: Real>(
    x: &FlexTensor,
    w: &FlexTensor,
    b: Option<&FlexTensor>,
    d: &Dims,
) -> FlexTensor {
    let (x, w) = (data::<T>(x), data::<T>(w));
    let b = b.map(data::<T>);
    let mut y = vec![T::default(); d.n * d.c_out * d.out_plane()];
    y.par_chunks_mut(d.c_out * d.out_plane())
        .zip(x.par_chunks(d.in_len()))
        .for_each_init(
            || vec![T::default(); d.k() * d.out_plane()],
            |cols, (y, x)| forward_image(x, w, b, y, cols, d),
        );
    tensor(y, [d.n, d.c_out, d.out_hw[0], d.out_hw[1]].into())
}

/// One image of [`forward`]. Not inlined, so that profiles name it.
#[inline(never)]
fn forward_image<T: Real>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    y: &mut [T],
    cols: &mut [T],
    d: &Dims,
) {
    let (k, plane) = (d.k(), d.out_plane());
    im2col(x, cols, d);
    matmul(
        [d.c_out, plane, k],
        y,
        [plane, 1],
        false,
        w,
        [k, 1],
        cols,
        [plane, 1],
    );
    if let Some(b) = b {
        for (row, &bias) in y.chunks_mut(plane).zip(b) {
            row.iter_mut().for_each(|v| *v += bias);
        }
    }
}

fn input_grad<T: Real>(dy: &FlexTensor, w: &FlexTensor, d: &Dims) -> FlexTensor {
    let (dy, w) = (data::<T>(dy), data::<T>(w));
    let mut dx = vec![T::default(); d.n * d.in_len()];
    dx.par_chunks_mut(d.in_len())
        .zip(dy.par_chunks(d.c_out * d.out_plane()))
        .for_each_init(
            || vec![T::default(); d.k() * d.out_plane()],
            |cols, (dx, dy)| input_grad_image(dy, w, dx, cols, d),
        );
    tensor(dx, [d.n, d.c_in, d.in_hw[0], d.in_hw[1]].into())
}

/// One image of [`input_grad`]. Not inlined, so that profiles name it.
#[inline(never)]
fn input_grad_image<T: Real>(dy: &[T], w: &[T], dx: &mut [T], cols: &mut [T], d: &Dims) {
    let (k, plane) = (d.k(), d.out_plane());
    matmul(
        [k, plane, d.c_out],
        cols,
        [plane, 1],
        false,
        w,
        [1, k],
        dy,
        [plane, 1],
    );
    col2im(cols, dx, d);
}

fn weight_grad<T: Real>(x: &FlexTensor, dy: &FlexTensor, d: &Dims) -> FlexTensor {
    let (x, dy) = (data::<T>(x), data::<T>(dy));
    let chunks: Vec<Vec<T>> = (0..d.n.div_ceil(DW_CHUNK))
        .into_par_iter()
        .map(|chunk| {
            weight_grad_chunk(
                x,
                dy,
                chunk * DW_CHUNK..((chunk + 1) * DW_CHUNK).min(d.n),
                d,
            )
        })
        .collect();
    let mut dw = vec![T::default(); d.c_out * d.k()];
    for chunk in &chunks {
        dw.iter_mut().zip(chunk).for_each(|(a, &b)| *a += b);
    }
    tensor(dw, [d.c_out, d.c_in, d.kernel[0], d.kernel[1]].into())
}

/// [`weight_grad`]'s sum over `images`. Not inlined, so that profiles name it.
#[inline(never)]
fn weight_grad_chunk<T: Real>(
    x: &[T],
    dy: &[T],
    images: std::ops::Range<usize>,
    d: &Dims,
) -> Vec<T> {
    let (k, plane, c_out) = (d.k(), d.out_plane(), d.c_out);
    let mut acc = vec![T::default(); c_out * k];
    let mut cols = vec![T::default(); k * plane];
    for img in images {
        im2col(&x[img * d.in_len()..][..d.in_len()], &mut cols, d);
        let dy = &dy[img * c_out * plane..][..c_out * plane];
        matmul(
            [c_out, k, plane],
            &mut acc,
            [k, 1],
            true,
            dy,
            [plane, 1],
            &cols,
            [1, plane],
        );
    }
    acc
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    t.shape().dims()
}

impl ConvKernels for Flex {
    fn conv_fwd(x: FlexTensor, w: FlexTensor, b: Option<FlexTensor>, geom: ConvGeom) -> FlexTensor {
        let (x, w) = (x.to_contiguous(), w.to_contiguous());
        let b = b.map(|b| b.to_contiguous());
        let ([n, c_in, h, wd], [c_out, _, kh, kw]) = (dims4(&x), dims4(&w));
        let d = Dims::new(n, c_in, c_out, [h, wd], [kh, kw], geom);
        match x.dtype() {
            DType::F64 => forward::<f64>(&x, &w, b.as_ref(), &d),
            _ => forward::<f32>(&x, &w, b.as_ref(), &d),
        }
    }

    fn conv_dx(dy: FlexTensor, w: FlexTensor, geom: ConvGeom, in_hw: [usize; 2]) -> FlexTensor {
        let (dy, w) = (dy.to_contiguous(), w.to_contiguous());
        let ([n, c_out, ..], [_, c_in, kh, kw]) = (dims4(&dy), dims4(&w));
        let d = Dims::new(n, c_in, c_out, in_hw, [kh, kw], geom);
        match dy.dtype() {
            DType::F64 => input_grad::<f64>(&dy, &w, &d),
            _ => input_grad::<f32>(&dy, &w, &d),
        }
    }

    fn conv_dw(x: FlexTensor, dy: FlexTensor, geom: ConvGeom, kernel: [usize; 2]) -> FlexTensor {
        let (x, dy) = (x.to_contiguous(), dy.to_contiguous());
        let ([n, c_in, h, w], [_, c_out, ..]) = (dims4(&x), dims4(&dy));
        let d = Dims::new(n, c_in, c_out, [h, w], kernel, geom);
        match x.dtype() {
            DType::F64 => weight_grad::<f64>(&x, &dy, &d),
            _ => weight_grad::<f32>(&x, &dy, &d),
        }
    }
}
