//! This crate's kernels for burn's flex backend: convolution ([`crate::conv`]), per-channel
//! batch-norm primitives ([`crate::channel`]) and 2×2 max-pooling ([`crate::maxpool`]), on
//! f32 and f64, parallel over rayon's pool.

mod channel;
mod conv;
mod maxpool;

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, Element, Shape};

/// f32 or f64.
pub(crate) trait Real:
    Element
    + bytemuck::Pod
    + Default
    + Send
    + Sync
    + PartialOrd
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// 1.
    const ONE: Self;
}
impl Real for f32 {
    const ONE: Self = 1.0;
}
impl Real for f64 {
    const ONE: Self = 1.0;
}

/// The contiguous values of `t` (made contiguous by the caller).
pub(crate) fn data<T: Real>(t: &FlexTensor) -> &[T] {
    t.as_slice::<T>()
        .expect("contiguous tensor of the dispatched dtype")
}

/// A contiguous flex tensor of `shape` holding `values`.
pub(crate) fn tensor<T: Real>(values: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        T::dtype(),
    )
}
