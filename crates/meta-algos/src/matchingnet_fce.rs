//! Full context embeddings of Matching Networks (Vinyals et al. 2016, sec. 2.1.2 and app. A).
//!
//! - Support set: `g(xᵢ, S) = h→ᵢ + h←ᵢ + g′(xᵢ)`, a bidirectional LSTM over the support
//!   embeddings `g′(xᵢ)` (in the task's support order: grouped by label) with a skip connection.
//! - Queries: `f(x̂, S) = attLSTM(f′(x̂), g(S), K)`, K steps of
//!   `rₖ₋₁ = Σᵢ softmax(hₖ₋₁ᵀ g(xᵢ)) g(xᵢ)`, `ĥₖ, cₖ = LSTM(f′(x̂), [hₖ₋₁, rₖ₋₁], cₖ₋₁)`,
//!   `hₖ = ĥₖ + f′(x̂)`, from `h₀ = c₀ = 0`; the embedding is `h_K`.
//!
//! The LSTM cells are written here from tensor operations (one bias per gate, PyTorch's
//! `U(±1/√hidden)` initialisation drawn from [`meta_backbones::rng`], so one seed gives the same
//! weights on every backend).

use burn::module::{Module, Param};
use burn::tensor::activation::{sigmoid, softmax, tanh};
use burn::tensor::{Tensor, backend::Backend};
use meta_backbones::rng;

/// One LSTM cell: input `[N, input]`, recurrent state `[N, state]`, cell and output `[N, hidden]`.
#[derive(Module, Debug)]
pub struct LstmCell<B: Backend> {
    /// Input weights `[input, 4·hidden]` (gates i, f, g, o).
    pub input_weight: Param<Tensor<B, 2>>,
    /// Recurrent weights `[state, 4·hidden]`.
    pub state_weight: Param<Tensor<B, 2>>,
    /// Gate biases `[4·hidden]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> LstmCell<B> {
    /// A cell with PyTorch's initialisation, `U(±1/√hidden)` for every weight and bias.
    pub fn new(input: usize, state: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            input_weight: Param::from_tensor(rng::fan_in_uniform(
                [input, 4 * hidden],
                hidden,
                device,
            )),
            state_weight: Param::from_tensor(rng::fan_in_uniform(
                [state, 4 * hidden],
                hidden,
                device,
            )),
            bias: Param::from_tensor(rng::fan_in_uniform([4 * hidden], hidden, device)),
        }
    }

    /// One step: the new `(hidden, cell)` from input `x`, recurrent state `s` and cell `c`.
    pub fn step(
        &self,
        x: Tensor<B, 2>,
        s: Tensor<B, 2>,
        c: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let hidden = self.bias.dims()[0] / 4;
        let gates = x.matmul(self.input_weight.val())
            + s.matmul(self.state_weight.val())
            + self.bias.val().unsqueeze_dim(0);
        let gate = |k: usize| gates.clone().narrow(1, k * hidden, hidden);
        let (i, f, g, o) = (
            sigmoid(gate(0)),
            sigmoid(gate(1)),
            tanh(gate(2)),
            sigmoid(gate(3)),
        );
        let c = f * c + i * g;
        (o * tanh(c.clone()), c)
    }
}

/// The full-context-embedding LSTMs over embeddings of width `dim`.
#[derive(Module, Debug)]
pub struct FullContext<B: Backend> {
    /// The support encoder's forward LSTM.
    pub support_forward: LstmCell<B>,
    /// The support encoder's backward LSTM.
    pub support_backward: LstmCell<B>,
    /// The query encoder's attention LSTM; its recurrent state is `[h, r]`.
    pub query: LstmCell<B>,
}

impl<B: Backend> FullContext<B> {
    /// Freshly initialised LSTMs for embeddings of width `dim`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            support_forward: LstmCell::new(dim, dim, dim, device),
            support_backward: LstmCell::new(dim, dim, dim, device),
            query: LstmCell::new(dim, 2 * dim, dim, device),
        }
    }

    /// `g(S)` `[Ns, D]` from the support embeddings `g′(S)` `[Ns, D]`, in their order.
    pub fn support(&self, embeddings: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, dim] = embeddings.dims();
        let device = embeddings.device();
        let rows: Vec<Tensor<B, 2>> = (0..n).map(|i| embeddings.clone().narrow(0, i, 1)).collect();
        let run = |cell: &LstmCell<B>, rows: &mut dyn Iterator<Item = Tensor<B, 2>>| {
            let (mut h, mut c) = (
                Tensor::zeros([1, dim], &device),
                Tensor::zeros([1, dim], &device),
            );
            let mut out = Vec::with_capacity(n);
            for row in rows {
                (h, c) = cell.step(row, h, c);
                out.push(h.clone());
            }
            out
        };
        let forward = Tensor::cat(run(&self.support_forward, &mut rows.clone().into_iter()), 0);
        let mut backward = run(&self.support_backward, &mut rows.into_iter().rev());
        backward.reverse();
        let backward = Tensor::cat(backward, 0);
        embeddings + forward + backward
    }

    /// `f(Q, S)` `[Nq, D]` from the query embeddings `f′(Q)` `[Nq, D]` and the full-context
    /// support embeddings `g(S)` `[Ns, D]`, after `steps` attention reads.
    pub fn query(
        &self,
        queries: Tensor<B, 2>,
        support: Tensor<B, 2>,
        steps: usize,
    ) -> Tensor<B, 2> {
        let device = queries.device();
        let dims = queries.dims();
        let (mut h, mut c) = (Tensor::zeros(dims, &device), Tensor::zeros(dims, &device));
        let support_t = support.clone().transpose();
        for _ in 0..steps {
            let attention = softmax(h.clone().matmul(support_t.clone()), 1); // [Nq, Ns]
            let read = attention.matmul(support.clone()); // [Nq, D]
            let (next, cell) = self
                .query
                .step(queries.clone(), Tensor::cat(vec![h, read], 1), c);
            (h, c) = (next + queries.clone(), cell);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::test_util::TB;

    type IB = <TB as burn::tensor::backend::AutodiffBackend>::InnerBackend;

    fn host<const D: usize>(t: Tensor<IB, D>) -> Vec<f64> {
        t.into_data().convert::<f64>().to_vec().unwrap()
    }

    /// The cell against the LSTM equations written out in f64.
    #[test]
    fn lstm_cell_matches_its_equations() {
        let device = Default::default();
        rng::seed(2);
        let (input, state, hidden) = (3, 4, 2);
        let cell = LstmCell::<IB>::new(input, state, hidden, &device);
        let x = rng::random::<IB, 2>([1, input], Distribution::Normal(0.0, 1.0), &device);
        let s = rng::random::<IB, 2>([1, state], Distribution::Normal(0.0, 1.0), &device);
        let c = rng::random::<IB, 2>([1, hidden], Distribution::Normal(0.0, 1.0), &device);
        let (h_new, c_new) = cell.step(x.clone(), s.clone(), c.clone());
        let (wx, ws, b) = (
            host(cell.input_weight.val()),
            host(cell.state_weight.val()),
            host(cell.bias.val()),
        );
        let (x, s, c) = (host(x), host(s), host(c));
        let pre = |j: usize| {
            b[j] + (0..input)
                .map(|k| x[k] * wx[k * 4 * hidden + j])
                .sum::<f64>()
                + (0..state)
                    .map(|k| s[k] * ws[k * 4 * hidden + j])
                    .sum::<f64>()
        };
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        for (u, c_u) in c.iter().enumerate() {
            let (i, f, g, o) = (
                sig(pre(u)),
                sig(pre(hidden + u)),
                pre(2 * hidden + u).tanh(),
                sig(pre(3 * hidden + u)),
            );
            let want_c = f * c_u + i * g;
            let want_h = o * want_c.tanh();
            let (got_h, got_c) = (host(h_new.clone())[u], host(c_new.clone())[u]);
            assert!(
                (got_c - want_c).abs() < 1e-5,
                "cell {u}: {got_c} vs {want_c}"
            );
            assert!(
                (got_h - want_h).abs() < 1e-5,
                "hidden {u}: {got_h} vs {want_h}"
            );
        }
    }

    /// Each support embedding depends on every other support image (the context), and a
    /// query's on the support set; with a single read step from h₀ = 0 the query attends
    /// uniformly, so that step sees only the support mean.
    #[test]
    fn embeddings_depend_on_the_whole_support_set() {
        let device = Default::default();
        rng::seed(4);
        let fce = FullContext::<IB>::new(6, &device);
        let support = rng::random::<IB, 2>([4, 6], Distribution::Normal(0.0, 1.0), &device);
        let queries = rng::random::<IB, 2>([3, 6], Distribution::Normal(0.0, 1.0), &device);
        let mut changed = host(support.clone());
        changed[3 * 6] += 1.0; // the last support embedding only
        let changed = Tensor::<IB, 2>::from_data(TensorData::new(changed, [4, 6]), &device);
        let (g, g2) = (fce.support(support.clone()), fce.support(changed.clone()));
        let first_row = |t: Tensor<IB, 2>| host(t.narrow(0, 0, 1));
        let moved = first_row(g.clone())
            .iter()
            .zip(first_row(g2.clone()))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            moved > 1e-4,
            "the first support embedding ignores the last image: {moved}"
        );
        let (q, q2) = (
            fce.query(queries.clone(), g.clone(), 3),
            fce.query(queries, g2, 3),
        );
        let moved = host(q)
            .iter()
            .zip(host(q2))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            moved > 1e-4,
            "the query embedding ignores the support set: {moved}"
        );
        assert_eq!(g.dims(), [4, 6]);
    }
}
