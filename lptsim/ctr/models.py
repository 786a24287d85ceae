"""The paper's CTR models: LR, FM, DNN, DeepFM, DCN, DCNv2, IPNN.

Every model gets its tables from one ``EmbeddingFactory``: ``factory(num_embeddings, dim, name=...)`` -> a module
mapping ids (B, fields) to (B, fields, dim), so a low-precision embedding drops in without touching the models.
``name`` is the table's attribute (``embedding``, or ``linear`` for the first-order table): a factory that seeds
each table from its name (lptsim.ctr.embedding.TableFactory) gets the same tables however the model is built.
Each model returns logits of shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

EmbeddingFactory = Callable[..., nn.Module]  # (num_embeddings, dim, name=...) -> module


def fp32_embedding(num_embeddings: int, dim: int, name: str = "embedding") -> nn.Module:
    """The full-precision baseline table: nn.Embedding initialised N(0, 1e-4^2) as in FuxiCTR."""
    emb = nn.Embedding(num_embeddings, dim)
    nn.init.normal_(emb.weight, std=1e-4)
    return emb


class MLP(nn.Sequential):
    """Linear -> (BatchNorm) -> ReLU -> (Dropout) for each hidden size."""

    def __init__(self, inputs: int, hidden: Sequence[int], dropout: float = 0.0, batch_norm: bool = False):
        layers: list[nn.Module] = []
        for h in hidden:
            layers.append(nn.Linear(inputs, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            inputs = h
        super().__init__(*layers)
        self.out_features = inputs


class CTRModel(nn.Module):
    """Shared pieces: the main embedding table (B, F, D) and a first-order table (B, F, 1) when needed."""

    first_order = False

    def __init__(self, num_embeddings: int, num_fields: int, dim: int = 16,
                 embedding: EmbeddingFactory = fp32_embedding, hidden: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, batch_norm: bool = False,
                 cross_layers: int = 3):
        super().__init__()
        self.num_fields, self.dim = num_fields, dim
        self.embedding = embedding(num_embeddings, dim, name="embedding")
        self.linear = embedding(num_embeddings, 1, name="linear") if self.first_order else None
        self.bias = nn.Parameter(torch.zeros(1)) if self.first_order else None  # every parameter is used (DDP)
        self.build(hidden=tuple(hidden), dropout=dropout, batch_norm=batch_norm, cross_layers=cross_layers)

    def build(self, **kw: object) -> None:  # noqa: B027 - optional hook
        """Create the model-specific layers."""

    def first_order_logit(self, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(ids).sum(dim=(1, 2)) + self.bias

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids), ids)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def fm_interaction(emb: torch.Tensor) -> torch.Tensor:
    """Second-order FM term: 1/2 sum_d ((sum_f v_fd)^2 - sum_f v_fd^2)."""
    return 0.5 * (emb.sum(dim=1).pow(2) - emb.pow(2).sum(dim=1)).sum(dim=1)


class LR(CTRModel):
    """Logistic regression: bias + sum of per-feature weights (a dim-1 table)."""

    first_order = True

    def __init__(self, num_embeddings: int, num_fields: int, dim: int = 16,
                 embedding: EmbeddingFactory = fp32_embedding, **_: object):
        nn.Module.__init__(self)
        self.num_fields, self.dim = num_fields, 1
        self.linear = embedding(num_embeddings, 1, name="linear")
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.first_order_logit(ids)


class FM(CTRModel):
    """Factorisation machine (Rendle, 2010)."""

    first_order = True

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.first_order_logit(ids) + fm_interaction(emb)


class DNN(CTRModel):
    """An MLP on the concatenated field embeddings."""

    def build(self, hidden, dropout, batch_norm, **_):
        self.mlp = MLP(self.num_fields * self.dim, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_features, 1)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(emb.flatten(1))).squeeze(1)


class DeepFM(CTRModel):
    """FM and an MLP sharing the embeddings (Guo et al., 2017)."""

    first_order = True

    def build(self, hidden, dropout, batch_norm, **_):
        self.mlp = MLP(self.num_fields * self.dim, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_features, 1)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.first_order_logit(ids) + fm_interaction(emb) + self.out(self.mlp(emb.flatten(1))).squeeze(1)


class DCN(CTRModel):
    """Deep & Cross Network (Wang et al., 2017): x_{l+1} = x_0 (x_l . w_l) + b_l + x_l, beside an MLP."""

    def build(self, hidden, dropout, batch_norm, cross_layers, **_):
        width = self.num_fields * self.dim
        self.cross_w = nn.ParameterList([nn.Parameter(torch.randn(width) * width**-0.5) for _ in range(cross_layers)])
        self.cross_b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(cross_layers)])
        self.mlp = MLP(width, hidden, dropout, batch_norm)
        self.out = nn.Linear(width + self.mlp.out_features, 1)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x0 = emb.flatten(1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b, strict=True):
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return self.out(torch.cat([x, self.mlp(x0)], dim=1)).squeeze(1)


class DCNv2(CTRModel):
    """DCN-V2 (Wang et al., 2021): x_{l+1} = x_0 * (W_l x_l + b_l) + x_l, beside an MLP."""

    def build(self, hidden, dropout, batch_norm, cross_layers, **_):
        width = self.num_fields * self.dim
        self.cross = nn.ModuleList([nn.Linear(width, width) for _ in range(cross_layers)])
        self.mlp = MLP(width, hidden, dropout, batch_norm)
        self.out = nn.Linear(width + self.mlp.out_features, 1)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x0 = emb.flatten(1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.out(torch.cat([x, self.mlp(x0)], dim=1)).squeeze(1)


class IPNN(CTRModel):
    """Inner-product neural network (Qu et al., 2016): pairwise inner products + embeddings into an MLP."""

    def build(self, hidden, dropout, batch_norm, **_):
        f = self.num_fields
        rows, cols = torch.triu_indices(f, f, offset=1)
        self.register_buffer("pairs", rows * f + cols, persistent=False)  # unique: deterministic backward
        self.mlp = MLP(f * self.dim + rows.numel(), hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_features, 1)

    def head(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        inner = torch.bmm(emb, emb.transpose(1, 2)).flatten(1)[:, self.pairs]
        return self.out(self.mlp(torch.cat([emb.flatten(1), inner], dim=1))).squeeze(1)


DENSE_INITS = ("torch", "xavier_normal", "kaiming")


def init_dense(model: nn.Module, scheme: str) -> None:
    """Re-initialise the dense layers: ``xavier_normal`` (FuxiCTR: Xavier-normal weights, zero biases),
    ``kaiming`` (Kaiming-normal for ReLU, zero biases) or ``torch`` (leave torch's defaults).

    Every ``nn.Linear`` outside the embedding tables, and DCN's cross weights, treated as the
    ``Linear(width, 1)`` layers they are in FuxiCTR's CrossNet.
    """
    if scheme not in DENSE_INITS:
        raise ValueError(f"dense init must be one of {DENSE_INITS}, got {scheme!r}")
    if scheme == "torch":
        return
    init = nn.init.xavier_normal_ if scheme == "xavier_normal" else \
        (lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))
    skip = {id(m) for t in (getattr(model, "embedding", None), getattr(model, "linear", None)) if t is not None
            for m in t.modules()}
    for m in model.modules():
        if isinstance(m, nn.Linear) and id(m) not in skip:
            init(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    with torch.no_grad():
        for w in getattr(model, "cross_w", []):
            w.copy_(init(torch.empty(1, w.numel())).view(-1))


MODELS: dict[str, type[CTRModel]] = {
    "lr": LR, "fm": FM, "dnn": DNN, "deepfm": DeepFM, "dcn": DCN, "dcnv2": DCNv2, "ipnn": IPNN,
}


def build_model(name: str, num_embeddings: int, num_fields: int, dim: int = 16,
                embedding: EmbeddingFactory = fp32_embedding, **kw: object) -> CTRModel:
    """Construct a model by name (see ``MODELS``)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return MODELS[name](num_embeddings, num_fields, dim=dim, embedding=embedding, **kw)
