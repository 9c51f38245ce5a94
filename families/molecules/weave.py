"""The weave network of Kearnes et al. 2016 ("Molecular graph convolutions"), multitask, in torch.

Architecture (hidden sizes 50 as in the paper):

* W weave modules (1 or 2). Each computes
    A->A: relu(W a_i),  P->A: sum over pairs (i, j) of relu(W p_ij),  a_i' = relu(W [A->A, P->A])
    P->P: relu(W p_ij), A->P: relu(W [a_i, a_j]) + relu(W [a_j, a_i])  (order invariant),
    p_ij' = relu(W [A->P, P->P]).
  The last module's pair update is not used by the readout, so it is not computed.
* Readout: dense 128 (tanh) per atom, batch normalization (statistics over real atoms only; as in
  DeepChem, so that values spread over the bins, which are standard-normal quantiles), then the 11-bin
  Gaussian histogram of every one of the 128 values (memberships normalized over the bins, the bins of
  the field notes), summed over atoms -> 1408 molecule features, dense layers (ReLU, dropout) and two
  outputs per task. In eval mode the normalization is a fixed affine map, so outputs do not depend on
  the batch.
* Task kinds: a classification task's two outputs are a 2-class softmax (F = P(active)); a regression
  task's score is the difference of its two outputs (trained on standardised targets), de-standardised
  with the training split's mean and standard deviation, so that F is in the column's units.

Batch format and the graph structure (the design choice)
--------------------------------------------------------
The attribution engine needs ``forward(atom_features, pair_features)`` with exactly two tensors, both
with a leading batch dimension, so that it can scale both by alpha. The graph (which atoms each pair
joins, which rows are padding) is not a feature and must not be scaled, so it travels separately as a
:class:`Graph`: ``pair_index`` long [B, P, 2], ``atom_mask`` [B, A], ``pair_mask`` [B, P].
Padded batches: atoms [B, A_max, Fa], pairs [B, P_max, Fp]; padding rows are zero. Inside, the network
takes only the real rows, packed into one flat dimension (:class:`PackedGraph`), so padding costs no work
and a molecule gives the same output alone or in a batch.

* Training / batches of different molecules: ``model(atoms, pairs, graph)`` with the graph from
  :func:`collate`.
* Attribution of one molecule: ``bound = model.bind(features)`` returns a :class:`BoundWeave`, a small
  ``nn.Module`` whose ``forward(atoms, pairs)`` takes [K, A, Fa], [K, P, Fp] (K scaled copies of that
  molecule; a graph of batch 1 broadcasts over K) and returns [K, tasks] predictions (P(active), or
  the predicted value of a regression task), or logits / scores (log-odds, or the value of a regression
  task), chosen at bind time. Binding creates a new object instead of setting state
  on the shared model, so concurrent users (Streamlit threads) never see each other's molecules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from families.molecules.featurize import MoleculeFeatures

GAUSSIANS: tuple[tuple[float, float], ...] = (
    (-1.645, 0.283), (-1.080, 0.170), (-0.739, 0.134), (-0.468, 0.118), (-0.228, 0.114), (0.0, 0.114),
    (0.228, 0.114), (0.468, 0.118), (0.739, 0.134), (1.080, 0.170), (1.645, 0.283),
)

OUTPUTS = ("probability", "log_odds", "logits")


@dataclass
class Graph:
    """Structure of a padded batch (never scaled by alpha)."""

    pair_index: torch.Tensor  # long [B, P, 2], indices into the molecule's own atoms (padding: 0)
    atom_mask: torch.Tensor  # float [B, A]
    pair_mask: torch.Tensor  # float [B, P]

    def to(self, device) -> "Graph":
        return Graph(self.pair_index.to(device), self.atom_mask.to(device), self.pair_mask.to(device))


def collate(molecules: Sequence[MoleculeFeatures]):
    """Pad molecules into (atoms [B, A, Fa], pairs [B, P, Fp], Graph). P is at least 1.

    Only ``atoms``, ``pairs`` and ``pair_index`` of each molecule are read (so the training cache's
    packed molecules, which hold just these tensors, batch the same way)."""
    b = len(molecules)
    if b == 0:
        raise ValueError("collate needs at least one molecule")
    a_max = max(m.atoms.shape[0] for m in molecules)
    p_max = max(max(m.pairs.shape[0] for m in molecules), 1)
    fa, fp = molecules[0].atoms.shape[1], molecules[0].pairs.shape[1]
    atoms = torch.zeros(b, a_max, fa)
    pairs = torch.zeros(b, p_max, fp)
    index = torch.zeros(b, p_max, 2, dtype=torch.long)
    amask = torch.zeros(b, a_max)
    pmask = torch.zeros(b, p_max)
    for k, m in enumerate(molecules):
        n_atoms, n_pairs = m.atoms.shape[0], m.pairs.shape[0]
        atoms[k, :n_atoms] = m.atoms
        pairs[k, :n_pairs] = m.pairs
        index[k, :n_pairs] = m.pair_index
        amask[k, :n_atoms] = 1
        pmask[k, :n_pairs] = 1
    return atoms, pairs, Graph(index, amask, pmask)


def predict_batched(model: "WeaveModel", molecules: Sequence[MoleculeFeatures], batch_size: int = 128,
                    progress: Callable[[float], None] | None = None) -> np.ndarray:
    """float64 [n, tasks] predictions (P(active), or a regression task's value): one forward per batch, no gradients,
    the model's current mode (call ``model.eval()`` first when it may be training)."""
    if not molecules:
        return np.zeros((0, model.n_tasks))
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(molecules), batch_size):
            a, p, g = collate(list(molecules[start:start + batch_size]))
            out.append(model.predict_proba(a.to(device), p.to(device), g.to(device)).double().cpu().numpy())
            if progress is not None:
                progress(min((start + batch_size) / len(molecules), 1.0))
    return np.concatenate(out)


@dataclass
class PackedGraph:
    """The real rows of a padded batch in one flat dimension, so that no work goes to padding: atoms [N_atoms, F]
    and pairs [N_pairs, F] of all molecules one after another. A batch without padding (copies of one molecule
    along a path) is only reshaped."""

    atom_rows: torch.Tensor | None  # bool [B, A]: which padded rows are atoms; None: all of them
    pair_rows: torch.Tensor | None  # bool [B, P]; None: all of them
    ends: torch.Tensor  # long [N_pairs, 2]: each pair's two atoms, as packed rows
    molecule: torch.Tensor | None  # long [N_atoms]: each atom's molecule; None: A atoms each, in order
    batch: int

    @classmethod
    def of(cls, graph: Graph, batch: int) -> "PackedGraph":
        atom_rows = graph.atom_mask.expand(batch, -1) > 0
        pair_rows = graph.pair_mask.expand(batch, -1) > 0
        counts = atom_rows.sum(1)
        first = torch.cumsum(counts, 0) - counts  # each molecule's first packed atom
        ends = (graph.pair_index.expand(batch, -1, -1) + first.view(-1, 1, 1))[pair_rows]
        if bool(atom_rows.all()) and bool(pair_rows.all()):
            return cls(None, None, ends, None, batch)
        molecule = torch.repeat_interleave(torch.arange(batch, device=counts.device), counts)
        return cls(atom_rows, pair_rows, ends, molecule, batch)

    def atoms(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, A, F] -> [N_atoms, F]"""
        return _packed_rows(padded, self.atom_rows)

    def pairs(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, P, F] -> [N_pairs, F]"""
        return _packed_rows(padded, self.pair_rows)

    def per_molecule_sum(self, values: torch.Tensor) -> torch.Tensor:
        """[N_atoms, ...] -> [B, ...], each molecule's atoms summed."""
        if self.molecule is None:
            return values.view(self.batch, -1, *values.shape[1:]).sum(1)
        return values.new_zeros(self.batch, *values.shape[1:]).index_add(0, self.molecule, values)


def _packed_rows(padded: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    return padded.reshape(-1, padded.shape[-1]) if rows is None else padded[rows]


class WeaveModule(nn.Module):
    def __init__(self, n_atom_in: int, n_pair_in: int, hidden: int = 50, update_pairs: bool = True):
        super().__init__()
        self.aa = nn.Linear(n_atom_in, hidden)
        self.pa = nn.Linear(n_pair_in, hidden)
        self.a = nn.Linear(2 * hidden, hidden)
        self.update_pairs = update_pairs
        if update_pairs:
            self.ap = nn.Linear(2 * n_atom_in, hidden)
            self.pp = nn.Linear(n_pair_in, hidden)
            self.p = nn.Linear(2 * hidden, hidden)

    def forward(self, atoms, pairs, ends):  # packed: atoms [N_atoms, F], pairs [N_pairs, F], ends [N_pairs, 2]
        aa = torch.relu(self.aa(atoms))
        pa_pairs = torch.relu(self.pa(pairs))
        pa = pa_pairs.new_zeros(atoms.shape[0], pa_pairs.shape[-1]).index_add(0, ends[:, 0], pa_pairs)
        new_atoms = torch.relu(self.a(torch.cat([aa, pa], dim=-1)))
        if not self.update_pairs:
            return new_atoms, None
        ai, aj = atoms[ends[:, 0]], atoms[ends[:, 1]]
        ap = torch.relu(self.ap(torch.cat([ai, aj], -1))) + torch.relu(self.ap(torch.cat([aj, ai], -1)))
        pp = torch.relu(self.pp(pairs))
        new_pairs = torch.relu(self.p(torch.cat([ap, pp], dim=-1)))
        return new_atoms, new_pairs


class GaussianMembership(torch.autograd.Function):
    """m_k = e_k / (sum_j e_j + 1e-7) with e_k = exp(-z_k^2 / 2) and z_k = (x - mu_k) / sigma_k: [...] -> [..., 11].

    Most of the network's time goes here, elementwise over [atoms, 128, 11]; the backward by hand,
    dm_k/dx = m_k (s_k - sum_j m_j s_j) with s_k = d log e_k / dx = -z_k / sigma_k, takes a third less time than
    autograd's chain of divisions."""

    @staticmethod
    def forward(ctx, x, mu, sigma):
        z = (x.unsqueeze(-1) - mu) / sigma
        e = torch.exp(z.square_().mul_(-0.5))  # density / density at the mean
        member = e.div_(e.sum(-1, keepdim=True).add_(1e-7))
        ctx.save_for_backward(x, member, mu, sigma)
        return member

    @staticmethod
    def backward(ctx, grad):
        x, member, mu, sigma = ctx.saved_tensors
        weighted = member * (mu - x.unsqueeze(-1)) / sigma.square()  # m_k s_k
        return (grad * weighted).sum(-1) - (grad * member).sum(-1) * weighted.sum(-1), None, None


class GaussianHistogram(nn.Module):
    """Per-atom soft histogram of each feature over fixed Gaussian bins, summed over each molecule's atoms."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.tensor([m for m, _ in GAUSSIANS]), persistent=False)
        self.register_buffer("sigma", torch.tensor([s for _, s in GAUSSIANS]), persistent=False)

    def forward(self, x, packed: PackedGraph):  # x [N_atoms, F] packed -> [B, F * 11]
        return packed.per_molecule_sum(GaussianMembership.apply(x, self.mu, self.sigma)).flatten(1)


class WeaveModel(nn.Module):
    """Multitask weave network; ``forward(atoms, pairs, graph)`` -> logits [B, tasks, 2].

    All tasks are classification tasks until :meth:`set_regression` marks some as regression tasks."""

    def __init__(self, n_atom_features: int, n_pair_features: int, n_tasks: int, n_weave: int = 2,
                 hidden: int = 50, n_graph_features: int = 128, dense: Sequence[int] = (256, 128),
                 dropout: float = 0.25):
        super().__init__()
        if n_weave not in (1, 2, 3):
            raise ValueError("n_weave must be 1, 2 or 3")
        self.config = dict(n_atom_features=int(n_atom_features), n_pair_features=int(n_pair_features),
                           n_tasks=int(n_tasks), n_weave=int(n_weave), hidden=int(hidden),
                           n_graph_features=int(n_graph_features), dense=[int(d) for d in dense],
                           dropout=float(dropout))
        mods = []
        fa, fp = n_atom_features, n_pair_features
        for k in range(n_weave):
            mods.append(WeaveModule(fa, fp, hidden, update_pairs=k < n_weave - 1))
            fa = fp = hidden
        self.weave = nn.ModuleList(mods)
        self.atom_dense = nn.Linear(hidden, n_graph_features)
        # over the real atoms only (packed rows), as in DeepChem; in eval mode a fixed affine map, so a molecule's
        # output does not depend on its batch
        self.atom_norm = nn.BatchNorm1d(n_graph_features)
        self.histogram = GaussianHistogram()
        layers, width = [], n_graph_features * len(GAUSSIANS)
        for d in dense:
            layers += [nn.Linear(width, d), nn.ReLU(), nn.Dropout(dropout)]
            width = d
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_tasks * 2)
        self.n_tasks = n_tasks
        self.task_names: list[str] = [f"task{i}" for i in range(n_tasks)]
        # Not persistent: the checkpoint stores the task kinds and target scaling as plain lists, so files
        # written before regression tasks existed still load with a strict state_dict.
        self.register_buffer("regression", torch.zeros(n_tasks, dtype=torch.bool), persistent=False)
        self.register_buffer("target_mean", torch.zeros(n_tasks), persistent=False)
        self.register_buffer("target_std", torch.ones(n_tasks), persistent=False)
        self.featurizer = None  # set by the loader: the Featurizer the checkpoint was trained with

    def molecule_embedding(self, atoms, pairs, graph: Graph | PackedGraph):
        packed = graph if isinstance(graph, PackedGraph) else PackedGraph.of(graph, atoms.shape[0])
        a, p = packed.atoms(atoms), packed.pairs(pairs)
        for mod in self.weave:
            a, p = mod(a, p, packed.ends)
        h = self.atom_norm(torch.tanh(self.atom_dense(a)))
        return self.histogram(h, packed)

    def forward(self, atoms, pairs, graph: Graph | PackedGraph):
        z = self.mlp(self.molecule_embedding(atoms, pairs, graph))
        return self.head(z).view(-1, self.n_tasks, 2)

    def set_regression(self, regression: Sequence[bool], mean: Sequence[float], std: Sequence[float]) -> None:
        """Mark regression tasks and the training targets' mean and standard deviation (per task)."""
        device = self.regression.device
        self.regression = torch.tensor([bool(r) for r in regression], device=device)
        self.target_mean = torch.tensor([float(m) for m in mean], device=device)
        self.target_std = torch.tensor([float(s) for s in std], device=device)

    @property
    def task_kinds(self) -> list[str]:
        return ["regression" if r else "classification" for r in self.regression.tolist()]

    def task_scores(self, logits):
        """[B, tasks, 2] logits -> [B, tasks]: log-odds of a classification task, a regression task's value."""
        diff = logits[..., 1] - logits[..., 0]
        return torch.where(self.regression, diff * self.target_std + self.target_mean, diff)

    def predictions(self, logits):
        """[B, tasks, 2] logits -> [B, tasks]: P(active) of a classification task, a regression task's value."""
        scores = self.task_scores(logits)
        return torch.where(self.regression, scores, torch.sigmoid(scores))

    def predict_proba(self, atoms, pairs, graph: Graph):
        """[B, tasks] predictions: P(active), or the value of a regression task."""
        return self.predictions(self(atoms, pairs, graph))

    def bind(self, molecule: MoleculeFeatures | Sequence[MoleculeFeatures], output: str = "probability"):
        """A two-tensor forward for this molecule's graph (see the module docstring)."""
        mols = [molecule] if isinstance(molecule, MoleculeFeatures) else list(molecule)
        if mols[0].atoms.shape[1] != self.config["n_atom_features"] or \
                mols[0].pairs.shape[1] != self.config["n_pair_features"]:
            raise ValueError(
                f"features have {mols[0].atoms.shape[1]} atom / {mols[0].pairs.shape[1]} pair columns but the model "
                f"expects {self.config['n_atom_features']} / {self.config['n_pair_features']}: featurize with the "
                f"model's own featurizer (model.featurizer)")
        atoms, pairs, graph = collate(mols)
        device = next(self.parameters()).device
        return BoundWeave(self, graph.to(device), atoms.to(device), pairs.to(device), output)


class BoundWeave(nn.Module):
    """``forward(atoms [K, A, Fa], pairs [K, P, Fp]) -> [K, tasks]`` for a fixed graph.

    ``inputs`` holds the molecule's own padded features (batch = number of bound molecules), ready to
    hand to an attribution engine (the molecules family adds the baseline: families.molecules.baseline).
    """

    def __init__(self, model: WeaveModel, graph: Graph, atoms: torch.Tensor, pairs: torch.Tensor,
                 output: str = "probability"):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}")
        self.model = model
        self.graph = graph
        self.inputs = (atoms, pairs)
        self.output = output
        self.task_names = model.task_names
        self._packed: dict[int, PackedGraph] = {}  # by batch size: a scan calls with a few sizes, many times

    def packed(self, k: int) -> PackedGraph:
        """The graph for a batch of k: the bound molecules' graphs repeated, as the engine stacks path points
        [points * molecules, ...]."""
        if k not in self._packed:
            g, bound = self.graph, self.graph.pair_index.shape[0]
            if bound != 1 and k != bound:
                if k % bound:
                    raise ValueError(f"batch of {k} does not match {bound} bound molecules")
                reps = k // bound
                g = Graph(g.pair_index.repeat(reps, 1, 1), g.atom_mask.repeat(reps, 1), g.pair_mask.repeat(reps, 1))
            self._packed[k] = PackedGraph.of(g, k)
        return self._packed[k]

    def for_examples(self, rows: Sequence[int]) -> "BoundWeave":
        """The forward of the bound molecules `rows` in that order (repeats allowed: noisy copies of one molecule),
        which the engine asks for when it evaluates some of a batch's molecules on their own."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.graph.atom_mask.device)
        g = self.graph
        graph = Graph(g.pair_index.index_select(0, index), g.atom_mask.index_select(0, index),
                      g.pair_mask.index_select(0, index))
        atoms, pairs = (x.index_select(0, index.to(x.device)) for x in self.inputs)
        return BoundWeave(self.model, graph, atoms, pairs, self.output)

    def forward(self, atoms: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        logits = self.model(atoms, pairs, self.packed(atoms.shape[0]))
        if self.output == "logits":
            return logits.flatten(1)  # [K, tasks * 2]
        if self.output == "log_odds":  # a regression task's score is its value
            return self.model.task_scores(logits)
        return self.model.predictions(logits)
