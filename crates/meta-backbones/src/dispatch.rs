//! Picks this crate's own kernels ([`conv`](crate::conv), [`channel`](crate::channel),
//! [`maxpool`](crate::maxpool)) when the backend is flex (and, for batch-norm and pooling,
//! libtorch), and burn's operations otherwise.
//!
//! Library code is generic over `B: Backend` and Rust has no specialisation, so the choice is
//! made at run time from the backend's `TypeId`: the backend itself and under one or two autodiff
//! levels (a MAML inner loop lifts `Autodiff<Flex>` to `Autodiff<Autodiff<Flex>>`). A value
//! whose type was just compared equal is moved across with [`recast`] (a safe `Any` downcast).

use std::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorPrimitive};

/// Moves a value to the type it already is; panics only if the caller compared the wrong
/// `TypeId`s.
pub(crate) fn recast<S: Any, T: Any>(value: S) -> T {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<T>()
        .expect("recast between identical types")
}

/// Whether `a` and `b` are the same type.
pub(crate) fn same<A: Any, B: Any>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

/// Whether the kernels cover `dtype` (f32 and f64).
pub(crate) fn covered(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64)
}

/// The float primitive of `t`, for a kernel call.
pub(crate) fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// A kernel's result as a tensor.
pub(crate) fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// `on_kernels!(B, dtype, args, |K, a: ArgTy| body)`: when `B` is `Flex`, `Autodiff<Flex>` or
/// `Autodiff<Autodiff<Flex>>` and `dtype` is [`covered`], *returns* `body` from the enclosing
/// function with the type `K` naming that backend and `a` holding `args` as `ArgTy` (written
/// in terms of `K`); otherwise evaluates to `args` unchanged, for the caller's fallback.
///
/// `on_kernels!(tch; B, …)` does the same for `LibTorch` and its two autodiff levels as well (the
/// operations with libtorch kernels, [`crate::libtorch`]).
macro_rules! on_kernels {
    (tch; $B:ty, $dtype:expr, $args:expr, |$K:ident, $a:ident : $A:ty| $body:expr) => {{
        let args = on_kernels!($B, $dtype, $args, |$K, $a: $A| $body);
        #[cfg(feature = "tch")]
        let args = if !$crate::dispatch::covered($dtype) {
            args
        } else {
            on_kernels!(@levels $B, args, burn::backend::LibTorch, $K, $a, $A, $body);
            args
        };
        args
    }};
    ($B:ty, $dtype:expr, $args:expr, |$K:ident, $a:ident : $A:ty| $body:expr) => {{
        let args = $args;
        #[cfg(feature = "flex")]
        let args = if !$crate::dispatch::covered($dtype) {
            args
        } else {
            on_kernels!(@levels $B, args, burn::backend::Flex, $K, $a, $A, $body);
            args
        };
        #[cfg(not(feature = "flex"))]
        let _ = $dtype;
        args
    }};
    (@levels $B:ty, $args:ident, $T:ty, $K:ident, $a:ident, $A:ty, $body:expr) => {
        on_kernels!(@one $B, $args, $T, $K, $a, $A, $body);
        on_kernels!(@one $B, $args, burn::backend::Autodiff<$T>, $K, $a, $A, $body);
        on_kernels!(@one $B, $args, burn::backend::Autodiff<burn::backend::Autodiff<$T>>,
            $K, $a, $A, $body);
    };
    (@one $B:ty, $args:ident, $T:ty, $K:ident, $a:ident, $A:ty, $body:expr) => {
        if $crate::dispatch::same::<$B, $T>() {
            #[allow(dead_code)]
            type $K = $T;
            let $a: $A = $crate::dispatch::recast($args);
            return $crate::dispatch::recast($body);
        }
    };
}
pub(crate) use on_kernels;
