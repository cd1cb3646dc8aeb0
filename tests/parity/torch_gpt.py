"""Kiln's GPT written in PyTorch 1.13 (the reference of the parity test and the peer of
scripts/bench/gpt_vs_pytorch), and a safetensors reader in plain struct + json + numpy (PyTorch
1.13 ships no safetensors package).

Same architecture as models/gpt.h: token + learned position embeddings, pre-LayerNorm blocks
(causal multi-head attention with a fused qkv projection, GELU-tanh MLP of width 4C), final
LayerNorm, LM head tied to the token embedding. Parameter names are Kiln's, except that the two
embeddings are torch.nn.Embedding modules: Kiln's "wte" is "wte.weight" here (to_kiln_name).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "U8": np.uint8,
           "F16": np.float16}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype=_DTYPES[e["dtype"]])
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta


class Attention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = Attention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = Mlp(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, seq_len, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(seq_len, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied head
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def to_kiln_name(torch_name):
    return {"wte.weight": "wte", "wpe.weight": "wpe"}.get(torch_name, torch_name)


def load_kiln_weights(model, tensors):
    """Copies Kiln's weights (by Kiln name) into the model; every parameter must be present."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            src = tensors[to_kiln_name(name)]
            assert tuple(src.shape) == tuple(p.shape), (name, src.shape, p.shape)
            p.copy_(torch.from_numpy(src))


def param_groups(model, weight_decay):
    """Kiln's decay rule: embeddings and linear weights decay; biases and LayerNorm do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_norm = ".ln_" in name or name.startswith("ln_f")
        (no_decay if name.endswith("bias") or is_norm else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
