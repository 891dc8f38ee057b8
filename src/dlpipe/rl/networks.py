"""The networks an agent learns: a Q-network, and an actor-critic (categorical or Gaussian policy).

Each is rebuilt from a JSON spec (what the bundle stores), never from code in the bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import BundleError
from dlpipe.models.mlp import MLP

__all__ = ["QNetwork", "ActorCritic", "QTable", "build_network"]


class QNetwork(nn.Module):
    """Observation (B, D) -> action values (B, A) through a plain MLP.

    Example:
        >>> QNetwork(4, 2, [16])(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int]) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.net = MLP(obs_dim, n_actions, hidden=list(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def greedy(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).argmax(dim=-1)

    def example_inputs(self) -> torch.Tensor:
        return torch.zeros(2, self.obs_dim)  # (N, D): for the report's layer table


class QTable(nn.Module):
    """A tabular Q-function as a bias-free linear layer over one-hot states: (B, S) -> (B, A).

    Only a view for describing and drawing the table (weight (A, S) = the table transposed);
    an agent acts from its float64 ``q_table`` array.

    Example:
        >>> QTable.from_array(np.eye(3, 2))(torch.eye(3)).argmax(dim=-1).tolist()
        [0, 1, 0]
    """

    def __init__(self, n_states: int, n_actions: int) -> None:
        super().__init__()
        self.values = nn.Linear(n_states, n_actions, bias=False)
        self.values.weight.requires_grad_(False)

    @classmethod
    def from_array(cls, table: np.ndarray) -> QTable:
        module = cls(*table.shape)
        with torch.no_grad():
            module.values.weight.copy_(torch.as_tensor(np.asarray(table).T, dtype=torch.float32))
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(x)

    def greedy(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).argmax(dim=-1)

    def example_inputs(self) -> torch.Tensor:
        return torch.eye(self.values.in_features)[:2]  # (N, S): two one-hot states


class ActorCritic(nn.Module):
    """A policy (actor) and a state-value baseline (critic) with separate bodies.

    Discrete actions: the actor outputs logits (B, A). Continuous actions: it outputs the mean
    (B, A) of a Gaussian with a learned, state-independent log standard deviation.

    Example:
        >>> ac = ActorCritic(4, 2, [16])
        >>> ac.distribution(torch.zeros(3, 4)).sample().shape
        torch.Size([3])
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: list[int],
        continuous: bool = False,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.continuous = continuous
        self.actor = MLP(obs_dim, n_actions, hidden=list(hidden), activation="tanh")
        self.critic = MLP(obs_dim, 1, hidden=list(hidden), activation="tanh")
        if continuous:
            self.log_std = nn.Parameter(torch.full((n_actions,), float(log_std_init)))

    def distribution(self, x: torch.Tensor) -> torch.distributions.Distribution:
        out = self.actor(x)
        if self.continuous:
            return torch.distributions.Normal(
                out, self.log_std.clamp(-5.0, 2.0).exp().expand_as(out)
            )
        return torch.distributions.Categorical(logits=out)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)  # (B,)

    def greedy(self, x: torch.Tensor) -> torch.Tensor:
        out = self.actor(x)
        return out if self.continuous else out.argmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.actor(x)

    def example_inputs(self) -> torch.Tensor:
        return torch.zeros(2, self.obs_dim)  # (N, D): for the report's layer table

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(actor + log_std, critic): optimised and clipped separately, because value errors are in
        return units (up to hundreds) and would otherwise swamp the policy's share of one joint norm."""
        critic = list(self.critic.parameters())
        actor = [p for p in self.parameters() if all(p is not c for c in critic)]
        return actor, critic


def build_network(spec: dict[str, Any]) -> nn.Module:
    """Build the network a bundle's ``model_spec`` describes."""
    family = spec.get("family")
    hidden = [int(h) for h in spec.get("hidden", [])]
    if family == "rl-q":
        return QNetwork(int(spec["obs_dim"]), int(spec["n_actions"]), hidden)
    if family == "rl-actor-critic":
        return ActorCritic(
            int(spec["obs_dim"]),
            int(spec["n_actions"]),
            hidden,
            continuous=bool(spec.get("continuous", False)),
        )
    raise BundleError(
        f"the RL bundle's model family {family!r} is not known to this dlpipe (known: rl-q, rl-actor-critic); load it with the dlpipe version that wrote it."
    )
